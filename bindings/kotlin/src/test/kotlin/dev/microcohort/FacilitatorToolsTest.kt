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
 * A facilitator runs the week from her phone through the generated API: she moves a critique,
 * gives it a link and a learner to lead it, who then writes its agenda; she hides an entry and
 * nudges the learner with a private note, which the learner's notification plan tells once.
 */
class FacilitatorToolsTest {
    private val server = TestServer()
    private val devices: Path = Files.createTempDirectory("microcohort-facilitator")

    @AfterEach
    fun cleanUp() {
        server.close()
        devices.toFile().deleteRecursively()
    }

    private fun device(name: String) = Client.open(devices.resolve("$name.sqlite").toString(), TestKeychain)

    @Test
    fun `a facilitator hands a moved critique to a learner, hides an entry and sends a note`(): Unit = runBlocking {
        // Day 1 was six days ago: today is the first day of week 1.
        val start = server.programUnderWay(daysAgo = 6)
        val anaCode = server.admin("invite", "--cohort", "c1", "--name", "Ana")
        val fayCode = server.admin("add-facilitator", "--cohort", "c1", "--name", "Fay")
        server.start()
        device("ana").use { ana ->
            device("fay").use { fay ->
                ana.joinServer(server.url, anaCode, "Ana's phone", "UTC")
                fay.joinServer(server.url, fayCode, "Fay's phone", "UTC")
                val anaId = ana.myUserId()

                // The week's critique moves to its last evening, with a link, led by Ana.
                val movedTo = "${start.plusDays(12)}T18:30:00"
                val change = CritiqueWeekChange(1u, movedTo, "https://meet.example/w1", anaId)
                val learner = assertThrows<MicrocohortException.Rejected> { runBlocking { ana.changeCritiqueWeek(change) } }
                assertEquals(RejectCode.FACILITATOR_ONLY, learner.code)
                assertEquals(1u, fay.changeCritiqueWeek(change).revision)
                val skipped = CritiqueWeekChange(1u, "${start.plusDays(400)}T17:00:00", null, null)
                val wrong = assertThrows<MicrocohortException.InvalidInput> { runBlocking { fay.changeCritiqueWeek(skipped) } }
                assertEquals("moved_to", wrong.field)

                ana.syncNow()
                assertEquals(movedTo, ana.critiqueWeek(1u)?.movedTo)
                assertEquals(anaId, ana.weekRoles(1u).critiqueLead)
                val reminder = ana.reminderPlan(14u).map { it.details }.filterIsInstance<ReminderDetails.Critique>()
                    .single { it.week == 1u }
                assertEquals("https://meet.example/w1", reminder.link)

                // As this week's lead, Ana writes its agenda.
                val session = ana.startPractice(null)
                val log = ana.finishPractice(session.id, PracticeOutcome(660u, "", null))
                val shared = ana.sharePractice(log.id, "Pausing first", "I counted to three")
                val item = ana.addAgendaItem(shared, "Start here")
                ana.syncNow()
                fay.syncNow()
                assertEquals(listOf(item.key), fay.agenda(1u).map { it.meta.key })

                // Fay hides the entry (Ana still sees it, with the reason) and nudges her.
                fay.hideEntry(shared, "Names a colleague; please edit")
                fay.sendNote(anaId, "Ten minutes today keeps your streak going.")
                // Without quiet hours the note is handed out at once, whatever the hour the test runs.
                ana.setReminderPreferences(ana.profile().reminders.copy(quietHours = null))
                ana.syncNow()
                assertEquals("Names a colleague; please edit", ana.weekRows(1u).submissions.single().meta.hidden)
                assertEquals(1, ana.notesToMe().size)
                val notes = ana.notificationPlan(7u).map { it.details }.filterIsInstance<NotificationDetails.NoteFromFacilitator>()
                assertEquals(listOf("Fay"), notes.map { it.from })
                assertTrue(ana.notificationPlan(7u).none { it.kind == NotificationKind.NOTE_FROM_FACILITATOR }, "told once")
            }
        }
    }
}
