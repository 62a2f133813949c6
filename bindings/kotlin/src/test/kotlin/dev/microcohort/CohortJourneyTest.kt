package dev.microcohort

import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.CopyOnWriteArrayList
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.flow.takeWhile
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** Records what the library tells the app, as the app's listener would. */
class RecordingListener : ClientListener {
    val changes = CopyOnWriteArrayList<DataChange>()
    val statuses = CopyOnWriteArrayList<SyncStatus>()
    val threads = CopyOnWriteArrayList<String>()

    override fun onDataChanged(change: DataChange) {
        threads.add(Thread.currentThread().name)
        changes.add(change)
    }

    override fun onSyncStatusChanged(status: SyncStatus) {
        threads.add(Thread.currentThread().name)
        statuses.add(status)
    }
}

/**
 * A learner, a cohort peer and a facilitator, each on their own device, against a real sync
 * server: join with invite codes, practise and share while the server is down, give feedback,
 * rate and reply, co-write the synthesis, and converge — all through the generated Kotlin API.
 */
class CohortJourneyTest {
    private val server = TestServer()
    private val devices: Path = Files.createTempDirectory("microcohort-devices")

    @AfterEach
    fun cleanUp() {
        server.close()
        devices.toFile().deleteRecursively()
    }

    private fun device(name: String) = Client.open(devices.resolve("$name.sqlite").toString(), TestKeychain)


    @Test
    fun `learner, member and facilitator work offline and converge through the server`(): Unit = runBlocking {
        // A program whose first day was 8 days ago, one cohort, three invites.
        server.programUnderWay(8)
        val anaCode = server.admin("invite", "--cohort", "c1", "--name", "Ana", "--time-zone", "Europe/Berlin")
        val benCode = server.admin("invite", "--cohort", "c1", "--name", "Ben", "--time-zone", "America/New_York")
        val fayCode = server.admin("add-facilitator", "--cohort", "c1", "--name", "Fay")
        server.start()

        device("ana").use { ana ->
            device("ben").use { ben ->
                device("fay").use { fay ->
                    assertEquals("learner", ana.joinServer(server.url, anaCode, "Ana's phone", "Europe/Berlin").role)
                    assertEquals("learner", ben.joinServer(server.url, benCode, "Ben's phone", "America/New_York").role)
                    assertEquals("facilitator", fay.joinServer(server.url, fayCode, "Fay's tablet", "UTC").role)
                    assertTrue(ana.syncStatus().linked)

                    // --- Ana, offline: today's prompt, a timed practice, sharing it ---------------
                    val listener = RecordingListener()
                    val (submission, log) = ana.listen(listener).use {
                        server.stop()
                        val today = ana.today()
                        val week = checkNotNull(today.position.week) { "the program is under way" }
                        val prompt = checkNotNull(today.prompt) { "a prompt is scheduled today" }
                        assertEquals("Europe/Berlin", today.timeZone)

                        val session = ana.startPractice(null)
                        assertEquals(prompt.promptRef, session.prompt)
                        assertEquals(session, ana.today().inProgress)
                        val log = ana.finishPractice(session.id, PracticeOutcome(
                            durationSecs = 600u,
                            reflection = "I interrupted less than last week.",
                            transfer = TransferEvidence(TransferKind.APPLIED_AT_WORK, "Used it in the stand-up", null),
                        ))
                        assertEquals(PracticeStatus.COMPLETED, log.status)
                        val submission = ana.sharePractice(log.id, "Listening first", "I waited three seconds before answering.")
                        assertEquals(week, submission.week)

                        val offline = assertThrows<MicrocohortException.Offline> { runBlocking { ana.syncNow() } }
                        assertTrue(offline.detail.isNotBlank())
                        val status = ana.syncStatus()
                        assertEquals(1uL, status.pendingPracticeLogs)
                        assertNotNull(status.lastError)

                        ana.waitForListeners()
                        assertTrue(DataChange.Practice in listener.changes)
                        assertTrue(DataChange.Document("week:c1:$week") in listener.changes)
                        assertNotNull(listener.statuses.last().lastError)

                        // --- back online -----------------------------------------------------------
                        server.start()
                        ana.syncNow()
                        assertEquals(0uL, ana.syncStatus().pendingPracticeLogs)
                        assertNull(ana.syncStatus().lastError)
                        ana.waitForListeners()
                        assertNull(listener.statuses.last().lastError)
                        assertEquals(setOf("microcohort-events"), listener.threads.toSet(), "one event thread")
                        submission to log
                    }
                    // The subscription is closed: no more events reach the listener.
                    val heard = listener.changes.size
                    ana.setTimeZone("Europe/Berlin")
                    ana.waitForListeners()
                    assertEquals(heard, listener.changes.size)
                    val week = submission.week

                    // --- Ben, a cohort member: sees the shared practice, gives feedback ------------
                    ben.syncNow()
                    val shared = ben.weekRows(week).submissions.single()
                    assertEquals("Listening first", shared.title)
                    assertFalse(shared.body.contains("interrupted less"), "the reflection stays private")
                    val feedback = ben.giveFeedback(submission, FeedbackInput(
                        body = "You gave the other person room to finish.",
                        suggestion = "Next time, name what you heard before answering.",
                        criteria = listOf(0u),
                    ))
                    ben.syncNow()
                    // Only its author may change a submission; only the submission's author rates.
                    val notYours = assertThrows<MicrocohortException.Rejected> { ben.editEntry(submission, "Rewritten by Ben") }
                    assertEquals(RejectCode.NOT_YOUR_ENTRY, notYours.code)
                    assertTrue(notYours.reason.contains(submission.key))
                    // Not allowed is the same case whichever call finds it.
                    val notTheirs = assertThrows<MicrocohortException.Rejected> { ben.rateFeedback(feedback, 4u.toUByte()) }
                    assertEquals(RejectCode.NOT_YOUR_SUBMISSION, notTheirs.code)
                    // Sharing the same practice again returns its submission, which names the log.
                    assertEquals(submission, ana.sharePractice(log.id, "Listening first", "again"))
                    assertEquals(log.id, ben.weekRows(week).submissions.single().practiceLog)

                    // --- Ana is told of the feedback, once; she rates it and replies ---------------
                    // Without quiet hours it is handed out at once, whatever the hour the test runs
                    // (in hers it would wait for their end; the core's tests cover that).
                    ana.setReminderPreferences(ana.profile().reminders.copy(quietHours = null))
                    ana.syncNow()
                    val told = ana.notificationPlan(7u).filter { it.kind == NotificationKind.FEEDBACK_ON_MY_WORK }
                    assertEquals(1, told.size, "$told")
                    assertEquals("feedback-${feedback.key}", told.single().id)
                    assertEquals(feedback.key, told.single().entry)
                    val details = told.single().details as NotificationDetails.FeedbackOnMyWork
                    assertEquals(Triple(week, "Ben", "Listening first"), Triple(details.week, details.from, details.submissionTitle))
                    assertTrue(ana.notificationPlan(7u).none { it.kind == NotificationKind.FEEDBACK_ON_MY_WORK }, "told once")
                    assertTrue(ana.nextSyncAt().isAfter(java.time.Instant.now()))
                    // Her inbox holds it until she looks.
                    assertEquals(listOf(feedback.key), ana.unread().map { it.entry })
                    ana.markAllRead()
                    assertTrue(ana.unread().isEmpty())
                    assertEquals(feedback.key, ana.weekRows(week).feedback.single().meta.key)
                    assertEquals(listOf(0u), ana.weekRows(week).feedback.single().criteria, "structured, not JSON")
                    ana.rateFeedback(feedback, 5u.toUByte())
                    ana.reply(feedback, null, "Thanks, I will try that tomorrow.")
                    ana.syncNow()
                    ben.syncNow()
                    val benTold = ben.notificationPlan(7u).map { it.kind }
                    assertTrue(NotificationKind.REPLY_TO_ME in benTold && NotificationKind.RATING_OF_MY_FEEDBACK in benTold, "$benTold")
                    val benView = ben.weekRows(week)
                    assertEquals(5L, benView.ratings.single().score)
                    assertTrue(benView.ratings.single().counted)
                    assertEquals("Thanks, I will try that tomorrow.", benView.replies.single().body)

                    // --- Fay, the facilitator: the cohort's logs, attendance, the synthesis --------
                    fay.syncNow()
                    // She sets the critique agenda; learners read it and cannot write it.
                    val item = fay.addAgendaItem(submission, "Start with the three-second pause")
                    fay.moveAgendaItem(item, 0u)
                    val learnerAgenda = assertThrows<MicrocohortException.Rejected> { ana.addAgendaItem(submission, "mine") }
                    assertEquals(RejectCode.FACILITATOR_ONLY, learnerAgenda.code)
                    fay.syncNow()
                    ana.syncNow()
                    assertEquals(listOf(submission.key to "Start with the three-second pause"), ana.agenda(week).map { it.submission to it.note })
                    val relayed = fay.cohortPracticeLogs()
                    assertEquals(listOf(log.id), relayed.map { it.id })
                    assertEquals("completed", relayed.single().status)
                    assertEquals(setOf(MemberRole.LEARNER, MemberRole.FACILITATOR), fay.roster().map { it.role }.toSet())
                    assertEquals(3, fay.roster().size)
                    assertEquals(WeeklyRole.FACILITATOR, fay.myRole(week))
                    fay.recordAttendance(week, ana.myUserId(), true)
                    fay.editSynthesis(week, 0u, 0u, "Waiting before answering helped everyone.")
                    fay.syncNow()
                    ana.syncNow()
                    ben.syncNow()
                    assertEquals("Waiting before answering helped everyone.", ana.synthesis(week))
                    // Positions as a Kotlin text field counts them (UTF-16), around an emoji.
                    fay.editSynthesis(week, 0u, 0u, "🙂 ")
                    val afterEmoji = "🙂 ".length.toUInt()
                    fay.editSynthesisUtf16(week, afterEmoji, 0u, "Yes: ")
                    assertEquals("🙂 Yes: Waiting before answering helped everyone.", fay.synthesis(week))
                    val inside = assertThrows<MicrocohortException.InvalidInput> { fay.editSynthesisUtf16(week, 1u, 0u, "x") }
                    assertEquals("position", inside.field)
                    fay.editSynthesisUtf16(week, 0u, afterEmoji + "Yes: ".length.toUInt(), "")
                    fay.syncNow()
                    ana.syncNow()
                    ben.syncNow()
                    assertEquals(fay.weekRows(week), ana.weekRows(week))
                    assertEquals(fay.weekRows(week), ben.weekRows(week))
                    assertTrue(ana.weekRows(week).attendance.single().present)

                    // --- Fay's dashboard, offline: Ana practised and was rated, Ben gave feedback ----
                    server.stop()
                    val dashboard = fay.cohortDashboard()
                    val anaRow = dashboard.members.single { it.userId == ana.myUserId() }
                    val benRow = dashboard.members.single { it.userId == ben.myUserId() }
                    assertEquals(1u, anaRow.activeDays7)
                    assertEquals(1u, anaRow.transferEvidence)
                    assertEquals(1u, anaRow.feedbackReceived)
                    assertEquals(1u, benRow.feedbackGiven)
                    assertEquals(5.0, benRow.meanHelpfulnessGiven)
                    assertEquals(1.0, benRow.suggestionShare)
                    assertEquals(1u, dashboard.feedback.given)
                    // Learners do not get the cohort dashboard.
                    assertEquals(RejectCode.FACILITATOR_ONLY, assertThrows<MicrocohortException.Rejected> { ana.cohortDashboard() }.code)
                    server.start()

                    // --- what the learner's screens show now ---------------------------------------
                    val metrics = ana.learnerMetrics(null)
                    assertTrue(metrics.practisedToday)
                    assertEquals(1u, metrics.streak)
                    assertEquals(1u, metrics.activeDays7)
                    assertEquals(10u, metrics.minutesTotal)
                    assertEquals(1u, metrics.practicesTotal)
                    // Joined mid-week: Ana's weekly duties start with the next week.
                    assertEquals(WeeklyRole.PRACTISE_AND_REVIEW, ana.myRole(week + 1u))
                    assertTrue(ana.reminderPlan(14u).isNotEmpty())
                    assertTrue(ana.calendar().startsWith("BEGIN:VCALENDAR"))
                    assertEquals(listOf(log.id), ana.practiceLogs().map { it.id })
                    assertEquals("ok", ana.integrityCheck())
                    assertTrue(ana.failedIntents().isEmpty())

                    // --- Ana links her tablet from her phone: her history and reflections back; the phone signed out
                    val link = ana.createDeviceLink()
                    device("ana-tablet").use { tablet ->
                        assertEquals(ana.myUserId(), tablet.linkDevice(link.payload, "Ana's tablet", "Europe/Berlin").userId)
                        assertEquals(1u, tablet.syncNow().historyLogsReceived)
                        assertEquals(listOf(log.id), tablet.practiceLogs().map { it.id })
                        // Her private reflection came sealed, and opened with the key the link carried.
                        assertEquals("I interrupted less than last week.", tablet.practiceLogs().single().reflection)
                        assertEquals(ana.recoveryKey(), tablet.recoveryKey())
                        assertEquals(1u, tablet.learnerMetrics(null).streak)
                        assertEquals(fay.weekRows(week), tablet.weekRows(week))
                        assertEquals(3, tablet.roster().size, "one person, not a new member")
                        val devices = tablet.devices()
                        assertEquals(2, devices.size)
                        val phone = devices.single { !it.thisDevice }
                        assertEquals("Ana's phone", phone.name)
                        tablet.signOutDevice(phone.deviceId)
                        assertThrows<MicrocohortException.Unauthorized> { runBlocking { ana.syncNow() } }
                    }
                }
            }
        }
    }

    @Test
    fun `a UI and a background sync worker share one client, and nothing is lost or hidden`(): Unit = runBlocking {
        server.programUnderWay(8)
        val anaCode = server.admin("invite", "--cohort", "c1", "--name", "Ana", "--time-zone", "UTC")
        val benCode = server.admin("invite", "--cohort", "c1", "--name", "Ben", "--time-zone", "UTC")
        server.start()

        device("ana").use { ana ->
            device("ben").use { ben ->
                ana.joinServer(server.url, anaCode, "Ana's phone", "UTC")
                ben.joinServer(server.url, benCode, "Ben's phone", "UTC")
                // The sync worker cannot open its own client on Ana's file: the app hands it the one.
                assertThrows<MicrocohortException.AlreadyOpen> { device("ana") }

                // The UI collects Ana's events as a Flow, until the week's document changes twice.
                val week = checkNotNull(ana.today().position.week)
                val weekDoc = DataChange.Document("week:c1:$week")
                val documentChanges = java.util.concurrent.atomic.AtomicInteger()
                val subscribed = java.util.concurrent.atomic.AtomicBoolean()
                val collected = async(Dispatchers.Default) {
                    withTimeout(60_000) {
                        ana.events().takeWhile { event ->
                            subscribed.set(true)
                            if (event is ClientEvent.DataChanged && event.change == weekDoc) documentChanges.incrementAndGet()
                            documentChanges.get() < 2
                        }.toList()
                    }
                }
                // The collector subscribes asynchronously: write until it hears something.
                withTimeout(30_000) {
                    while (!subscribed.get()) {
                        ana.setTimeZone("UTC")
                        ana.waitForListeners()
                        delay(20)
                    }
                }

                val session = ana.startPractice(null)
                val log = ana.finishPractice(session.id, PracticeOutcome(600u, "", null))
                val mine = ana.sharePractice(log.id, "Listening first", "I waited before answering.")
                ana.syncNow()
                ben.syncNow()
                val feedback = ben.giveFeedback(mine, FeedbackInput("You let them finish.", null, listOf(0u)))
                ben.syncNow()

                // The worker syncs on its thread while the UI goes on writing on another.
                val worker = launch(Dispatchers.IO) { repeat(4) { ana.syncNow() } }
                val ui = launch(Dispatchers.Default) {
                    repeat(3) {
                        val next = ana.startPractice(null)
                        ana.finishPractice(next.id, PracticeOutcome(300u, "", null))
                    }
                }
                worker.join()
                ui.join()
                ana.syncNow()

                // Ben's feedback is there, Ana can reply to it, and everything reached the server.
                assertEquals(listOf(feedback.key), ana.weekRows(week).feedback.map { it.meta.key })
                ana.reply(feedback, null, "Thanks, I will try it.")
                ana.syncNow()
                ben.syncNow()
                assertEquals("Thanks, I will try it.", ben.weekRows(week).replies.single().body)
                assertEquals(4, ana.practiceLogs().size)
                assertEquals(0uL, ana.syncStatus().pendingPracticeLogs)
                assertNull(ana.syncStatus().lastError)
                assertTrue(ana.failedIntents().isEmpty())

                val events = collected.await()
                assertTrue(events.any { it is ClientEvent.DataChanged && it.change == DataChange.Practice })
                assertTrue(events.any { it is ClientEvent.SyncStatusChanged })
            }
        }
    }
}
