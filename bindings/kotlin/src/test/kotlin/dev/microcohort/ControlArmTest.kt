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
 * A learner the program placed in its control arm, through the generated API: her membership says
 * so, she practises alone (sharing is refused with CONTROL_ARM, no critique is planned), and she
 * shares a transfer story with the program team, which the next sync delivers.
 */
class ControlArmTest {
    private val server = TestServer()
    private val devices: Path = Files.createTempDirectory("microcohort-control")

    @AfterEach
    fun cleanUp() {
        server.close()
        devices.toFile().deleteRecursively()
    }

    @Test
    fun `a control learner practises alone and shares a transfer story with the program team`(): Unit = runBlocking {
        server.programUnderWay(daysAgo = 6)
        server.admin("create-cohort", "--id", "k", "--program", "p1", "--title", "Control", "--arm", "control")
        val code = server.admin("invite", "--program", "p1", "--name", "Nadia", "--arm", "control")
        server.start()
        Client.open(devices.resolve("nadia.sqlite").toString(), TestKeychain).use { nadia ->
            nadia.joinServer(server.url, code, "Nadia's phone", "UTC")
            val membership = nadia.memberships().single()
            assertEquals(Arm.CONTROL, membership.arm)
            assertEquals("k", membership.cohortId)

            val session = nadia.startPractice(null)
            val outcome = PracticeOutcome(
                600u, "private thoughts",
                TransferEvidence(TransferKind.APPLIED_AT_WORK, "Paused before answering in the review", null),
            )
            val log = nadia.finishPractice(session.id, outcome)
            val refused = assertThrows<MicrocohortException.Rejected> {
                runBlocking { nadia.sharePractice(log.id, "Mine", "notes") }
            }
            assertEquals(RejectCode.CONTROL_ARM, refused.code)
            assertTrue(nadia.reminderPlan(14u).none { it.kind == ReminderKind.CRITIQUE }, "no critiques alone")

            assertEquals(StoryState.Pending, nadia.shareTransferStory(log.id))
            nadia.syncNow()
            assertEquals(StoryState.Shared, nadia.transferStory(log.id))
        }
    }
}
