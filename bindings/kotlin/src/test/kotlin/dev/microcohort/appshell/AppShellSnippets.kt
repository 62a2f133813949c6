// The code docs/app-shell.md shows, compiled (and partly tested) by the Maven build so that the
// guide keeps up with the bindings. Platform calls (AlarmManager, WorkManager, UNUserNotification-
// Center) sit behind the small interfaces below; on a phone they are the app's few lines of glue.
package dev.microcohort.appshell

import dev.microcohort.Client
import dev.microcohort.MicrocohortException
import dev.microcohort.Notification
import dev.microcohort.NotificationDetails
import dev.microcohort.RejectCode
import dev.microcohort.SecretStore
import java.io.File
import java.security.GeneralSecurityException
import java.security.MessageDigest
import java.time.Instant
import java.time.ZoneId
import javax.crypto.Cipher
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/** One client per database file for the whole process: screens and background sync share it. */
object Microcohort {
    @Volatile
    private var client: Client? = null

    fun client(databasePath: String, secrets: SecretStore): Client =
        client ?: synchronized(this) { client ?: Client.open(databasePath, secrets).also { client = it } }
}

/**
 * The device token and the private-text key, sealed with AES-GCM under a key that never leaves
 * the platform's keystore, one file per secret. On Android, `key` comes from the AndroidKeyStore
 * (a `KeyGenParameterSpec` for AES-GCM, purpose encrypt and decrypt) and `directory` is
 * `noBackupFilesDir`, so neither a backup nor a copied database carries a sign-in.
 */
class KeystoreSecretStore(private val directory: File, private val key: SecretKey) : SecretStore {
    private fun file(name: String): File {
        val digest = MessageDigest.getInstance("SHA-256").digest(name.toByteArray())
        return File(directory, digest.joinToString("") { "%02x".format(it) })
    }

    private fun cipher(): Cipher = Cipher.getInstance("AES/GCM/NoPadding")

    override fun get(name: String): ByteArray? {
        val sealed = file(name).takeIf { it.exists() }?.readBytes() ?: return null
        return try {
            cipher().run {
                init(Cipher.DECRYPT_MODE, key, GCMParameterSpec(128, sealed, 0, 12))
                doFinal(sealed, 12, sealed.size - 12)
            }
        } catch (e: GeneralSecurityException) {
            throw MicrocohortException.SecretStore("cannot open the stored secret: ${e.message}")
        }
    }

    override fun set(name: String, value: ByteArray) {
        val cipher = cipher().apply { init(Cipher.ENCRYPT_MODE, key) }
        val sealed = cipher.iv + cipher.doFinal(value)
        directory.mkdirs()
        val temporary = File(directory, "${file(name).name}.new")
        temporary.writeBytes(sealed)
        if (!temporary.renameTo(file(name))) throw MicrocohortException.SecretStore("cannot store a secret")
    }

    override fun remove(name: String) {
        file(name).delete()
    }
}

/** The platform's local notifications: AlarmManager + NotificationManager, or UNUserNotificationCenter. */
interface NotificationScheduler {
    fun cancelAll()

    fun schedule(id: String, at: Instant, title: String, body: String)
}

/** How many days of notifications to keep scheduled (iOS holds at most 64 pending; the plan stays under it). */
const val PLAN_DAYS: UInt = 14u

/**
 * Replaces every pending notification with the core's plan: reminders, and what happened in the
 * cohort. Call it after a sync, a local change, a change of the person's reminder preferences or
 * time zone, and when the phone restarts (pending alarms do not survive a reboot on Android). A
 * cohort notification comes in one plan after another until it has fired, then never again.
 */
suspend fun rescheduleNotifications(client: Client, scheduler: NotificationScheduler) {
    val plan = client.notificationPlan(PLAN_DAYS)
    scheduler.cancelAll()
    for (notification in plan) {
        val (title, body) = notificationText(notification, ZoneId.systemDefault())
        scheduler.schedule(notification.id, notification.fireAt, title, body)
    }
}

/**
 * A notification's text in the app's own words, from its details rather than the English
 * defaults (`title`, `body`). Here in English; a localised app uses its string resources. The
 * `when` is exhaustive: a new kind of notification fails this build until the app words it.
 */
fun notificationText(notification: Notification, zone: ZoneId): Pair<String, String> =
    when (val d = notification.details) {
        is NotificationDetails.Practice -> "Your practice for today" to "${d.promptTitle} (${d.minutes} min)"
        is NotificationDetails.CritiqueSoon ->
            "Critique of week ${d.week} at ${d.startsAt.atZone(zone).toLocalTime()}" to "${d.minutes} minutes with your cohort"
        is NotificationDetails.ReviewsDue ->
            "${d.owed} review(s) to give" to "Before ${d.closesAt.atZone(zone).toLocalTime()}"
        is NotificationDetails.ReviewsOverdue -> "${d.owed} review(s) overdue" to "Late feedback still helps"
        is NotificationDetails.FeedbackOnMyWork -> "${d.from} gave you feedback" to "On \"${d.submissionTitle}\""
        is NotificationDetails.ReplyToMe -> "${d.from} replied to you" to notification.body
        is NotificationDetails.RatingOfMyFeedback -> "${d.from} rated your feedback" to "${d.score} of 5"
        is NotificationDetails.MyRole -> "Your role this week: ${d.role}" to (d.expectation ?: "")
        is NotificationDetails.SynthesisPublished -> "Week ${d.week}'s synthesis is ready" to "What your cohort learned"
        is NotificationDetails.NoteFromFacilitator -> "A note from ${d.from}" to d.excerpt
        is NotificationDetails.Announcement -> "${d.from} to the cohort" to d.excerpt
    }

/** What the background job tells the platform's scheduler. */
enum class SyncResult { DONE, RETRY_LATER, SIGN_IN_AGAIN, UPDATE_APP, CHECK_SERVER_ADDRESS }

/**
 * The periodic background job (WorkManager's CoroutineWorker, BGAppRefreshTask): one call, a few
 * quick retries inside, then the platform's own back-off.
 */
suspend fun backgroundSync(client: Client, scheduler: NotificationScheduler): SyncResult =
    try {
        client.syncWithRetry(3u)
        rescheduleNotifications(client, scheduler)
        SyncResult.DONE
    } catch (e: MicrocohortException.Offline) {
        SyncResult.RETRY_LATER
    } catch (e: MicrocohortException.Unauthorized) {
        SyncResult.SIGN_IN_AGAIN
    } catch (e: MicrocohortException.UpdateRequired) {
        SyncResult.UPDATE_APP
    } catch (e: MicrocohortException.Tls) {
        SyncResult.CHECK_SERVER_ADDRESS
    }

/** The phone's time zone changed (ACTION_TIMEZONE_CHANGED, NSSystemTimeZoneDidChange). */
suspend fun onTimeZoneChanged(client: Client, zoneId: String, scheduler: NotificationScheduler) {
    client.setTimeZone(zoneId)
    rescheduleNotifications(client, scheduler)
}

/**
 * Words for an error, in the app's language: switch on the case and the code, never on the
 * English text. Both `when`s are exhaustive, so a new case in the library fails this build.
 */
fun userMessage(error: MicrocohortException): String =
    when (error) {
        is MicrocohortException.Offline -> "Saved on this phone. It will be shared when you are online."
        is MicrocohortException.Tls -> "The server's address or certificate is wrong. Ask your facilitator."
        is MicrocohortException.Unauthorized -> "This phone is signed out. Join again with an invite or a link code."
        is MicrocohortException.Rejected -> rejectedMessage(error.code)
        is MicrocohortException.InvalidInput -> "Please check ${error.field}."
        is MicrocohortException.NotJoined -> "Join your cohort first."
        is MicrocohortException.UpdateRequired -> "Please update the app."
        is MicrocohortException.Storage -> "This phone's storage could not be used. Free some space and try again."
        is MicrocohortException.AlreadyOpen -> "The app is busy. Try again in a moment."
        is MicrocohortException.SecretStore -> "This phone's secure storage is locked or was reset. Unlock it, or join again."
        is MicrocohortException.Internal -> "Something went wrong. Nothing was changed."
    }

fun rejectedMessage(code: RejectCode): String =
    when (code) {
        RejectCode.NOT_YOUR_ENTRY -> "Only its author can change this."
        RejectCode.NOT_YOUR_SUBMISSION -> "Only the author of the work can rate its feedback."
        RejectCode.FACILITATOR_ONLY -> "Only a facilitator can do this."
        RejectCode.COHORT_FULL -> "This cohort is full."
        RejectCode.PRACTICE_IN_PROGRESS -> "Finish or stop the practice you started first."
        RejectCode.COHORT_RULES -> "Your cohort's rules do not allow this."
        RejectCode.SERVER_FORBIDDEN -> "The server does not allow this."
        RejectCode.SERVER_CONFLICT -> "Someone changed this at the same time. Try again."
        RejectCode.SERVER_NOT_FOUND -> "This is no longer on the server."
        RejectCode.TOO_LARGE -> "This is too large to share."
        RejectCode.BAD_REQUEST -> "The app sent something the server did not understand. Please update the app."
        RejectCode.CONTROL_ARM -> "Your program runs your practice on its own: there is no cohort to share with."
    }
