//! HTTPS on Android: the platform's TLS verifier reads the trust store through the app's
//! `Context`, which it must be given once before the first sync. Kotlin calls
//! `AndroidTls.initialize(applicationContext)` (a JNI method, not a uniffi one: uniffi cannot pass
//! a `Context`). On every other platform the call does nothing.

use jni::EnvUnowned;
use jni::objects::{JClass, JObject};

/// `dev.microcohort.AndroidTls.initialize(Object context)`. A failure (not a `Context`, a JNI
/// error) is thrown to the caller as a `RuntimeException`; a panic never crosses into the JVM.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_microcohort_AndroidTls_initialize<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    context: JObject<'caller>,
) {
    env.with_env(|env| -> Result<(), jni::errors::Error> {
        #[cfg(target_os = "android")]
        rustls_platform_verifier::android::init_with_env(env, context)?;
        #[cfg(not(target_os = "android"))]
        let _ = (env, context);
        Ok(())
    })
    .resolve::<jni::errors::ThrowRuntimeExAndDefault>()
}
