package dev.microcohort.appshell

import dev.microcohort.LibraryFilter
import dev.microcohort.MicrocohortException
import dev.microcohort.NotificationDetails
import dev.microcohort.NotificationKind
import dev.microcohort.SecretStore
import dev.microcohort.TestServer
import java.nio.file.Files
import java.time.Instant
import java.time.ZoneId
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import dev.microcohort.Client
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** The guide's snippets do what docs/app-shell.md says, against a real server. */
class AppShellSnippetsTest {
    private val server = TestServer()
    private val dir = Files.createTempDirectory("microcohort-app-shell")

    @AfterEach
    fun cleanUp() {
        server.close()
        dir.toFile().deleteRecursively()
    }

    private class RecordingScheduler : NotificationScheduler {
        val pending = mutableMapOf<String, Instant>()

        override fun cancelAll() = pending.clear()

        override fun schedule(id: String, at: Instant, title: String, body: String) {
            pending[id] = at
        }
    }

    @Test
    fun `background sync schedules the plan, follows a time-zone change and waits out an outage`(): Unit = runBlocking {
        server.programUnderWay(3)
        val code = server.admin("invite", "--cohort", "c1", "--name", "Ana", "--time-zone", "UTC")
        server.start()

        val path = dir.resolve("ana.sqlite").toString()
        val secrets = KeystoreSecretStore(dir.resolve("secrets").toFile(), newKey())
        val client = Microcohort.client(path, secrets)
        assertSame(client, Microcohort.client(path, secrets), "one client per database file")
        client.joinServer(server.url, code, "Ana's phone", "UTC")
        val scheduler = RecordingScheduler()

        assertEquals(SyncResult.DONE, backgroundSync(client, scheduler))
        val plan = client.notificationPlan(PLAN_DAYS)
        assertTrue(plan.isNotEmpty(), "a program under way has reminders")
        assertEquals(plan.associate { it.id to it.fireAt }, scheduler.pending)
        // Each reminder says what it is about, so the app words it itself.
        val practice = plan.first { it.kind == NotificationKind.PRACTICE }
        val details = practice.details as NotificationDetails.Practice
        val library = client.library(LibraryFilter(null, null, null)).map { it.prompt }
        assertTrue(library.any { it.title == details.promptTitle && it.minutes == details.minutes }, "$details")
        assertTrue(practice.body.contains(details.promptTitle))
        val critique = plan.first { it.kind == NotificationKind.CRITIQUE_SOON }
        val critiqueDetails = critique.details as NotificationDetails.CritiqueSoon
        assertTrue(critique.fireAt.isBefore(critiqueDetails.startsAt))
        val (title, _) = notificationText(critique, ZoneId.of("UTC"))
        assertEquals("Critique of week ${critiqueDetails.week} at ${critiqueDetails.startsAt.atZone(ZoneId.of("UTC")).toLocalTime()}", title)

        // Practice reminders fire at a local time: nine hours earlier in Tokyo than in UTC.
        val before = scheduler.pending.toMap()
        onTimeZoneChanged(client, "Asia/Tokyo", scheduler)
        assertEquals(client.notificationPlan(PLAN_DAYS).associate { it.id to it.fireAt }, scheduler.pending)
        assertNotEquals(before, scheduler.pending, "the reminders moved with the zone")

        server.stop()
        assertEquals(SyncResult.RETRY_LATER, backgroundSync(client, scheduler))
        val offline = runCatching { client.syncNow() }.exceptionOrNull() as MicrocohortException
        assertEquals("Saved on this phone. It will be shared when you are online.", userMessage(offline))
    }

    /** A platform key (on Android: generated inside the AndroidKeyStore, never exportable). */
    private fun newKey(): SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()

    /** Remembers what the app's store was given, to look for it in the database file. */
    private class Watching(private val inner: SecretStore) : SecretStore by inner {
        val given = mutableListOf<ByteArray>()

        override fun set(name: String, value: ByteArray) {
            given += value
            inner.set(name, value)
        }
    }

    private fun ByteArray.contains(part: ByteArray): Boolean =
        (0..size - part.size).any { at -> part.indices.all { this[at + it] == part[it] } }

    @Test
    fun `the keystore store holds the sign-in and the key, and the database file holds neither`(): Unit = runBlocking {
        server.programUnderWay(3)
        val code = server.admin("invite", "--cohort", "c1", "--name", "Bea", "--time-zone", "UTC")
        server.start()
        val secrets = dir.resolve("secrets").toFile()
        val key = newKey()
        val path = dir.resolve("bea.sqlite")
        val watching = Watching(KeystoreSecretStore(secrets, key))
        Client.open(path.toString(), watching).use { client ->
            client.joinServer(server.url, code, "Bea's phone", "UTC")
            client.syncNow()
            assertNotNull(client.recoveryKey())
        }
        assertEquals(2, watching.given.size, "the device token and the private-text key")
        assertEquals(2, secrets.listFiles()!!.size)
        val file = Files.readAllBytes(path)
        for (secret in watching.given) {
            assertFalse(file.contains(secret), "a secret in the database file")
            assertFalse(secrets.listFiles()!!.any { it.readBytes().contains(secret) }, "a secret stored unsealed")
        }

        // The same files under another key (a reset keystore) cannot be opened: a typed error
        // the app words, and nothing on the phone is lost.
        Client.open(path.toString(), KeystoreSecretStore(secrets, newKey())).use { client ->
            val error = assertThrows<MicrocohortException.SecretStore> { client.syncNow() }
            assertTrue(userMessage(error).contains("secure storage"))
            assertNotNull(client.today().prompt, "the phone's own data still opens")
        }
        Client.open(path.toString(), KeystoreSecretStore(secrets, key)).use { client -> client.syncNow() }
    }
}
