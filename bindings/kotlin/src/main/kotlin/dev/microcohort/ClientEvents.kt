// The client's change events for Kotlin apps: `listen` keeps them on one JVM thread, `events()`
// gives them as a Flow to collect in a ViewModel. Shipped next to the generated bindings.
package dev.microcohort

import com.sun.jna.Native
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.channels.awaitClose
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.callbackFlow

/** One change a screen may care about. */
sealed interface ClientEvent {
    /** Data changed: a local write, or a peer's change merged during sync. */
    data class DataChanged(val change: DataChange) : ClientEvent

    /** A sync attempt finished or the device was linked; `status` is read after it. */
    data class SyncStatusChanged(val status: SyncStatus) : ClientEvent
}

/** The JVM thread every event of a client arrives on (the client's one event thread). */
const val EVENT_THREAD_NAME = "microcohort-events"

/**
 * Subscribes `listener` so that its events arrive on one long-lived JVM thread named
 * [EVENT_THREAD_NAME]. (A bare `subscribe` works too, but JNA then attaches the client's event
 * thread to the JVM afresh for every event, as a new `Thread-N`.)
 */
fun Client.listen(listener: ClientListener): Subscription = subscribe(OnEventThread(listener))

private class OnEventThread(private val inner: ClientListener) : ClientListener {
    override fun onDataChanged(change: DataChange) {
        stayAttached()
        inner.onDataChanged(change)
    }

    override fun onSyncStatusChanged(status: SyncStatus) {
        stayAttached()
        inner.onSyncStatusChanged(status)
    }

    private fun stayAttached() {
        val thread = Thread.currentThread()
        if (thread.name != EVENT_THREAD_NAME) {
            // Attached once for the life of the client's event thread, not once per event.
            Native.detach(false)
            thread.name = EVENT_THREAD_NAME
        }
    }
}

/**
 * Every event from now on, in order, while the flow is collected; cancelling the collection
 * closes the subscription. The client delivers on its own event thread and never waits for the
 * collector (the buffer is unbounded), so collect on whichever dispatcher the screen needs.
 */
fun Client.events(): Flow<ClientEvent> = callbackFlow {
    val listener = object : ClientListener {
        override fun onDataChanged(change: DataChange) {
            trySend(ClientEvent.DataChanged(change))
        }

        override fun onSyncStatusChanged(status: SyncStatus) {
            trySend(ClientEvent.SyncStatusChanged(status))
        }
    }
    val subscription = listen(listener)
    awaitClose {
        subscription.unsubscribe()
        subscription.close()
    }
}.buffer(Channel.UNLIMITED)
