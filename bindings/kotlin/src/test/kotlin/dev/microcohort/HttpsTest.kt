package dev.microcohort

import java.nio.file.Files
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * Phones sync with a server that serves HTTPS itself, its certificate issued by a CA the
 * platform trusts (the build makes the test CA the trust store), through the generated API.
 */
class HttpsTest {
    private val server = TestServer()
    private val dir = Files.createTempDirectory("microcohort-https")

    @AfterEach
    fun cleanUp() {
        server.close()
        dir.toFile().deleteRecursively()
    }

    private fun device(name: String) = Client.open(dir.resolve("$name.sqlite").toString(), TestKeychain)

    @Test
    fun `the Android TLS set-up call is exported and does nothing off Android`() {
        // A misnamed JNI symbol or a library the JVM cannot load would throw here, as it would
        // in an Android app's Application.onCreate.
        AndroidTls.initialize(Any())
    }

    @Test
    fun `two phones share work over HTTPS, and a name the certificate lacks is a Tls error`(): Unit = runBlocking {
        server.programUnderWay(4)
        val anaCode = server.admin("invite", "--cohort", "c1", "--name", "Ana", "--time-zone", "UTC")
        val benCode = server.admin("invite", "--cohort", "c1", "--name", "Ben", "--time-zone", "UTC")
        server.startHttps()
        assertTrue(server.url.startsWith("https://localhost:"), server.url)

        device("ana").use { ana ->
            device("ben").use { ben ->
                ana.joinServer(server.url, anaCode, "Ana's phone", "UTC")
                ben.joinServer(server.url, benCode, "Ben's phone", "UTC")
                val session = ana.startPractice(null)
                val log = ana.finishPractice(session.id, PracticeOutcome(600u, "", null))
                val shared = ana.sharePractice(log.id, "Over TLS", "Shared through HTTPS")
                ana.syncNow()
                assertEquals(0uL, ana.syncStatus().pendingPracticeLogs)
                ben.syncNow()
                assertTrue(ben.weekRows(shared.week).submissions.any { it.title == "Over TLS" })
            }
        }

        // The same server by its IP address: the certificate does not name it.
        val byAddress = server.url.replace("localhost", "127.0.0.1")
        val code = server.admin("invite", "--cohort", "c1", "--name", "Cy", "--time-zone", "UTC")
        device("cy").use { cy ->
            val error = assertThrows<MicrocohortException.Tls> { runBlocking { cy.joinServer(byAddress, code, "Cy's phone", "UTC") } }
            assertTrue(error.detail.contains("certificate"), error.detail)
        }
    }
}
