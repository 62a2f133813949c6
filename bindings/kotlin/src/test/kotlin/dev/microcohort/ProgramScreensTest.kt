package dev.microcohort

import java.nio.file.Files
import java.time.Instant
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** The program screens' data through the generated API: schedule, next critique, capstone, library. */
class ProgramScreensTest {
    private val server = TestServer()
    private val dir = Files.createTempDirectory("microcohort-program-screens")

    @AfterEach
    fun cleanUp() {
        server.close()
        dir.toFile().deleteRecursively()
    }

    @Test
    fun `a learner reads the schedule, the next critique, the capstone brief and practises from the library`(): Unit =
        runBlocking {
            val start = server.programUnderWay(10, "Europe/Berlin")
            val code = server.admin("invite", "--cohort", "c1", "--name", "Ana", "--time-zone", "UTC")
            server.start()
            Client.open(dir.resolve("ana.sqlite").toString(), TestKeychain).use { ana ->
                ana.joinServer(server.url, code, "Ana's phone", "UTC")

                val schedule = ana.schedule()
                assertEquals("Everyday Leadership", schedule.title)
                assertEquals(start.toString(), schedule.startDate)
                assertEquals("Europe/Berlin", schedule.cohortTimeZone)
                assertEquals(0u, schedule.weeks.first().week)
                assertEquals(Phase.ORIENTATION, schedule.weeks.first().phase)
                assertEquals(schedule.endDate, schedule.weeks.last().lastDate)
                assertTrue(schedule.weeks.drop(1).all { it.critique != null && it.feedbackClosesAt != null })

                // The next critique is the first one that has not ended, as the schedule lists it.
                val next = checkNotNull(ana.nextCritique()) { "the program has critiques ahead" }
                val now = Instant.now()
                val expected = schedule.weeks.mapNotNull { it.critique }
                    .first { it.startsAt.plusSeconds(60L * it.minutes.toLong()).isAfter(now) }
                assertEquals(expected, next)

                val capstone = checkNotNull(ana.capstoneBrief()) { "the default pack has a capstone" }
                assertTrue(capstone.title.isNotBlank() && capstone.rubric.isNotEmpty())

                // Each role held in a week comes with what it is expected to do, in the pack's words;
                // the capstone weeks have their own text.
                ana.syncNow()
                val weekTwo = ana.weekRoles(2u)
                val held = weekTwo.roles.map { it.role }.toSet()
                assertTrue(weekTwo.expectations.isNotEmpty() && weekTwo.expectations.all { it.role in held }, "$weekTwo")
                suspend fun practise(week: UInt) =
                    ana.weekRoles(week).expectations.first { it.role == WeeklyRole.PRACTISE_AND_REVIEW }.text
                assertTrue(practise(2u).contains("daily practice"))
                assertTrue(practise(10u).contains("capstone") && practise(10u) != practise(2u))

                val everything = ana.library(LibraryFilter(null, null, null))
                val weekFive = ana.library(LibraryFilter(5u, null, null))
                assertTrue(weekFive.isNotEmpty() && weekFive.all { it.prompt.week == 5u })
                assertTrue(everything.size > weekFive.size)
                val word = weekFive.first().prompt.title.split(" ").maxBy { it.length }
                assertTrue(ana.library(LibraryFilter(null, null, word.uppercase())).any { it.prompt.id == weekFive.first().prompt.id })

                // A prompt from a later week, practised today as an extra.
                val extra = weekFive.first()
                assertFalse(extra.completed)
                val session = ana.startPractice(extra.prompt.id)
                ana.finishPractice(session.id, PracticeOutcome(durationSecs = 600u, reflection = "Tried it early.", transfer = null))
                assertTrue(ana.library(LibraryFilter(5u, null, null)).first { it.prompt.id == extra.prompt.id }.completed)
                assertTrue(ana.learnerMetrics(null).practisedToday, "an extra practice counts as today's")
            }
        }
}
