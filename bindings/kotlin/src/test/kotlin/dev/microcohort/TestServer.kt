package dev.microcohort

import java.io.BufferedReader
import java.io.InputStreamReader
import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.TimeUnit

/**
 * A real `microcohort-server` process on loopback with its own data directory, seeded through
 * the admin CLI the way an operator would. It can be stopped (the phones go offline) and started
 * again on the same port and data.
 */
class TestServer : AutoCloseable {
    private val binary: String = System.getProperty("microcohort.server")
        ?: error("system property microcohort.server (the server binary) is not set")
    private val dataDir: Path = Files.createTempDirectory("microcohort-server")
    private var process: Process? = null
    private var listen = "127.0.0.1:0"

    /** The base URL devices join and sync with; set once the server has started. */
    lateinit var url: String
        private set

    /** Runs `admin ARGS…` and returns what it printed (an invite code, for `invite`). */
    fun admin(vararg args: String): String {
        val process = ProcessBuilder(listOf(binary, "--data-dir", dataDir.toString(), "admin") + args)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start()
        val output = process.inputStream.bufferedReader().readText().trim()
        check(process.waitFor(60, TimeUnit.SECONDS) && process.exitValue() == 0) { "admin ${args.toList()} failed" }
        return output
    }

    /** Program p1 whose first day was `daysAgo` days ago, critiques in `timeZone`, with cohort c1; its start. */
    fun programUnderWay(daysAgo: Long, timeZone: String = "UTC"): java.time.LocalDate {
        val start = java.time.LocalDate.now(java.time.ZoneOffset.UTC).minusDays(daysAgo)
        admin("create-program", "--id", "p1", "--title", "Everyday Leadership",
            "--start", start.toString(), "--time-zone", timeZone)
        admin("create-cohort", "--id", "c1", "--program", "p1", "--title", "Spring cohort")
        return start
    }

    /**
     * Starts `serve` and waits until it listens: the first time on a free port, then on the same
     * one (retried while the old socket is still being released).
     */
    fun start() = startServing(https = false)

    /**
     * Starts `serve` with HTTPS, its certificate for `localhost` issued by the test CA in
     * `src/test/resources/tls` (which the build makes the platform trust store of the tests).
     */
    fun startHttps() = startServing(https = true)

    private fun startServing(https: Boolean) {
        check(process == null) { "already running" }
        tls = https
        repeat(50) {
            if (tryStart()) return
            Thread.sleep(100)
        }
        error("the server did not start on $listen")
    }

    private var tls = false

    private fun tlsFile(name: String): String =
        java.io.File(javaClass.getResource("/tls/$name")!!.toURI()).path

    private fun tryStart(): Boolean {
        val arguments = mutableListOf(binary, "--data-dir", dataDir.toString(), "serve", "--listen", listen)
        if (tls) arguments += listOf("--tls-cert", tlsFile("localhost-chain.pem"), "--tls-key", tlsFile("localhost-key.pem"))
        val started = ProcessBuilder(arguments)
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .apply { environment()["RUST_LOG"] = "warn" }
            .start()
        val stdout = BufferedReader(InputStreamReader(started.inputStream))
        val scheme = if (tls) "https" else "http"
        val address = stdout.readLine()?.removePrefix("listening on $scheme://")
        if (address == null || address.startsWith("listening")) {
            started.destroyForcibly()
            return false
        }
        // Keep reading so the server never blocks on a full pipe.
        Thread { stdout.useLines { lines -> lines.forEach { _ -> } } }.apply { isDaemon = true }.start()
        process = started
        listen = address
        url = if (tls) "https://localhost:${address.substringAfterLast(':')}" else "http://$address"
        return true
    }

    /** Kills the server: the devices are offline until [start] is called again. */
    fun stop() {
        process?.let {
            it.destroyForcibly()
            it.waitFor(30, TimeUnit.SECONDS)
        }
        process = null
    }

    override fun close() {
        stop()
        dataDir.toFile().deleteRecursively()
    }
}
