package dev.microcohort

/**
 * HTTPS on Android. The library verifies the server's certificate with Android's own trust store
 * (user-installed CAs and the app's network security config included), which it reaches through
 * the app's `Context`. Call `AndroidTls.initialize(applicationContext)` once, in
 * `Application.onCreate`, before the first join or sync; without it an HTTPS sync fails. The app
 * also needs the verifier's Kotlin part (the `rustls-platform-verifier` Android library) and the
 * R8 rules in `bindings/android/proguard-rules.pro`. Elsewhere the call does nothing.
 */
object AndroidTls {
    init {
        // A JNI method, so the library must be known to the JVM too (uniffi loads it through JNA).
        System.loadLibrary("microcohort_ffi")
    }

    /** `context`: the application's `android.content.Context`. Throws `RuntimeException` if it is not one. */
    @JvmStatic
    external fun initialize(context: Any)
}
