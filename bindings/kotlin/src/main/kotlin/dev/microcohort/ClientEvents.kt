// The client's change events as a Kotlin Flow: collect it in a ViewModel and refresh a screen
// when its data changed. Shipped next to the generated bindings (same package).
package dev.microcohort

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
    val subscription = subscribe(listener)
    awaitClose {
        subscription.unsubscribe()
        subscription.close()
    }
}.buffer(Channel.UNLIMITED)
