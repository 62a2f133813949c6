package dev.microcohort

import java.util.concurrent.ConcurrentHashMap

/**
 * The tests' stand-in for the Keychain or Keystore: one per process, like the app's own. Each
 * database scopes its names, so every test device can share it.
 */
object TestKeychain : SecretStore {
    private val values = ConcurrentHashMap<String, ByteArray>()

    override fun get(name: String): ByteArray? = values[name]

    override fun set(name: String, value: ByteArray) {
        values[name] = value
    }

    override fun remove(name: String) {
        values.remove(name)
    }
}
