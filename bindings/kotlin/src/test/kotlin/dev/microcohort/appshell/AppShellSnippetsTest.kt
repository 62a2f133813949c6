package dev.microcohort.appshell

import dev.microcohort.LibraryFilter
import dev.microcohort.MicrocohortException
import dev.microcohort.ReminderDetails
import dev.microcohort.ReminderKind
import dev.microcohort.TestServer
import java.nio.file.Files
import java.time.Instant
import java.time.ZoneId
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

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
        val client = Microcohort.client(path)
        assertSame(client, Microcohort.client(path), "one client per database file")
        client.joinServer(server.url, code, "Ana's phone", "UTC")
        val scheduler = RecordingScheduler()

        assertEquals(SyncResult.DONE, backgroundSync(client, scheduler))
        val plan = client.reminderPlan(REMINDER_DAYS)
        assertTrue(plan.isNotEmpty(), "a program under way has reminders")
        assertEquals(plan.associate { it.id to it.fireAt }, scheduler.pending)
        // Each reminder says what it is about, so the app words it itself.
        val practice = plan.first { it.kind == ReminderKind.PRACTICE }
        val details = practice.details as ReminderDetails.Practice
        val library = client.library(LibraryFilter(null, null, null)).map { it.prompt }
        assertTrue(library.any { it.title == details.promptTitle && it.minutes == details.minutes }, "$details")
        assertTrue(practice.body.contains(details.promptTitle))
        val critique = plan.first { it.kind == ReminderKind.CRITIQUE }
        val critiqueDetails = critique.details as ReminderDetails.Critique
        assertTrue(critique.fireAt.isBefore(critiqueDetails.startsAt))
        val (title, _) = reminderText(critique, ZoneId.of("UTC"))
        assertEquals("Critique of week ${critiqueDetails.week} at ${critiqueDetails.startsAt.atZone(ZoneId.of("UTC")).toLocalTime()}", title)

        // Practice reminders fire at a local time: nine hours earlier in Tokyo than in UTC.
        val before = scheduler.pending.toMap()
        onTimeZoneChanged(client, "Asia/Tokyo", scheduler)
        assertEquals(client.reminderPlan(REMINDER_DAYS).associate { it.id to it.fireAt }, scheduler.pending)
        assertNotEquals(before, scheduler.pending, "the reminders moved with the zone")

        server.stop()
        assertEquals(SyncResult.RETRY_LATER, backgroundSync(client, scheduler))
        val offline = runCatching { client.syncNow() }.exceptionOrNull() as MicrocohortException
        assertEquals("Saved on this phone. It will be shared when you are online.", userMessage(offline))
    }
}
