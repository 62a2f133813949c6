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
 * A facilitator of two cohorts keeps both in one database: a cohort switcher, one sync for both,
 * and the dashboards of both.
 */
class MembershipsTest {
    private val server = TestServer()
    private val devices: Path = Files.createTempDirectory("microcohort-memberships")

    @AfterEach
    fun cleanUp() {
        server.close()
        devices.toFile().deleteRecursively()
    }

    @Test
    fun `a facilitator of two cohorts switches between them in one database`(): Unit = runBlocking {
        server.programUnderWay(daysAgo = 10)
        server.admin("create-cohort", "--id", "c2", "--program", "p1", "--title", "Autumn cohort")
        server.start()
        Client.open(devices.resolve("fay.sqlite").toString(), TestKeychain).use { fay ->
            fay.joinServer(server.url, server.admin("add-facilitator", "--cohort", "c1", "--name", "Fay"), "Fay's phone", "UTC")
            val fayId = fay.myUserId()
            val second = server.admin("invite", "--cohort", "c2", "--role", "facilitator", "--name", "Fay", "--user", fayId)
            assertEquals("c2", fay.joinServer(server.url, second, "Fay's phone", "UTC").cohortId)
            assertEquals(1, fay.devices().size, "two memberships, one device")

            val memberships = fay.memberships()
            assertEquals(listOf("c2", "c1"), memberships.map { it.cohortId }, "the selected one first")
            assertTrue(memberships.first().selected)
            assertTrue(memberships.all { it.role == "facilitator" && it.programTitle == "Everyday Leadership" })

            assertTrue(fay.syncNow().membershipsRefused.isEmpty())
            assertEquals(listOf("c1", "c2"), fay.facilitatorOverview().map { it.cohortId })
            fay.selectMembership("c1")
            assertEquals("c1", fay.cohortDashboard().cohortId)
            assertThrows<MicrocohortException.InvalidInput> { runBlocking { fay.selectMembership("c9") } }
        }
    }
}
