package dev.microcohort

import java.nio.file.Files
import java.nio.file.Path
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * What an app sees when things go wrong: typed exceptions naming the problem, and a process that
 * keeps running after a failure inside the library.
 */
class BoundaryTest {
    private val dir: Path = Files.createTempDirectory("microcohort-boundary")

    @AfterEach
    fun cleanUp() {
        dir.toFile().deleteRecursively()
    }

    private fun fresh(name: String = "device") = Client.open(dir.resolve("$name.sqlite").toString(), TestKeychain)

    @Test
    fun `bad input is an InvalidInput exception naming the field, and nothing is written`(): Unit = runBlocking {
        fresh().use { client ->
            val notAnId = assertThrows<MicrocohortException.InvalidInput> {
                client.finishPractice("not-an-id", PracticeOutcome(600u, "", null))
            }
            assertEquals("practice_id", notAnId.field)
            assertEquals("time_zone", assertThrows<MicrocohortException.InvalidInput> { client.setTimeZone("Mars/Olympus") }.field)
            assertEquals("days", assertThrows<MicrocohortException.InvalidInput> { client.reminderPlan(0u) }.field)
            assertEquals("reference_date",
                assertThrows<MicrocohortException.InvalidInput> { client.learnerMetrics("last tuesday") }.field)
            val prefs = ReminderPreferences("7:75", true, true, 30u, null, 7u)
            assertEquals("practice_time", assertThrows<MicrocohortException.InvalidInput> { client.setReminderPreferences(prefs) }.field)
            assertEquals(0uL, client.pendingUploads())
        }
    }

    @Test
    fun `one client per database file, as a UI and a background worker would both open it`(): Unit = runBlocking {
        fresh("shared").use { ui ->
            ui.importDefaultPromptPack()
            val worker = assertThrows<MicrocohortException.AlreadyOpen> { fresh("shared") }
            assertTrue(worker.detail.contains("already open"))
        }
        // Closed: the next open gets it.
        fresh("shared").use { again -> assertEquals("ok", again.integrityCheck()) }
        assertThrows<MicrocohortException.InvalidInput> { Client.open("", TestKeychain) }
    }

    @Test
    fun `a device that has not joined is told so, and is not linked to a server`(): Unit = runBlocking {
        fresh().use { client ->
            assertThrows<MicrocohortException.NotJoined> { client.today() }
            assertThrows<MicrocohortException.NotJoined> { client.startPractice(null) }
            assertThrows<MicrocohortException.NotJoined> { kotlinx.coroutines.runBlocking { client.syncNow() } }
            assertEquals(false, client.syncStatus().linked)
        }
    }

    @Test
    fun `a server that is not there is Offline, not a crash`(): Unit = runBlocking {
        fresh().use { client ->
            val error = assertThrows<MicrocohortException.Offline> {
                kotlinx.coroutines.runBlocking { client.joinServer("http://127.0.0.1:9", "CODE", "phone", "UTC") }
            }
            assertTrue(error.detail.isNotBlank())
        }
    }

    @Test
    fun `a mistyped server address is InvalidInput naming server_url, not Offline`(): Unit = runBlocking {
        fresh().use { client ->
            for (address in listOf("127.0.0.1:9", "ftp://127.0.0.1:9", "", "https://example.org/?x=1")) {
                val error = assertThrows<MicrocohortException.InvalidInput> {
                    kotlinx.coroutines.runBlocking { client.joinServer(address, "CODE", "phone", "UTC") }
                }
                assertEquals("server_url", error.field, address)
            }
            assertEquals(false, client.syncStatus().linked)
        }
    }

    @Test
    fun `a corrupt database file is a Storage exception`(): Unit = runBlocking {
        val path = dir.resolve("corrupt.sqlite")
        Files.write(path, ByteArray(8192) { (it * 31 % 251).toByte() })
        val error = assertThrows<MicrocohortException.Storage> { Client.open(path.toString(), TestKeychain) }
        assertTrue(error.detail.isNotBlank())
    }

    @Test
    fun `a failure inside the library is an Internal exception and the library keeps working`(): Unit = runBlocking {
        val error = assertThrows<MicrocohortException.Internal> { triggerInternalFailureForTests() }
        assertTrue(error.detail.contains("triggered by a test"))
        fresh("after-failure").use { client -> assertEquals("ok", client.integrityCheck()) }
    }

    @Test
    fun `a listener may read from the client while it is being told of a change`(): Unit = runBlocking {
        fresh().use { client ->
            val seen = java.util.concurrent.CopyOnWriteArrayList<ULong>()
            val reading = object : ClientListener {
                override fun onDataChanged(change: DataChange) {
                    // Listeners run on the client's event thread: blocking there is fine.
                    seen.add(runBlocking { client.pendingUploads() })
                }
                override fun onSyncStatusChanged(status: SyncStatus) {}
            }
            client.subscribe(reading).use {
                client.importDefaultPromptPack()
                client.waitForListeners()
            }
            assertEquals(listOf(0uL), seen.toList())
        }
    }

    @Test
    fun `a listener that throws does not undo or break the change it was told about`(): Unit = runBlocking {
        fresh().use { client ->
            val throwing = object : ClientListener {
                override fun onDataChanged(change: DataChange): Unit = throw IllegalStateException("listener bug")
                override fun onSyncStatusChanged(status: SyncStatus): Unit = throw IllegalStateException("listener bug")
            }
            client.subscribe(throwing).use {
                assertTrue(client.importDefaultPromptPack().imported)
            }
            // The import stood: importing the same pack again finds it unchanged.
            assertEquals(false, client.importDefaultPromptPack().imported)
        }
    }
}
