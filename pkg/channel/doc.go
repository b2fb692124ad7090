// Package channel adds named channels to a Streamer app: clients
// subscribe, the server (and, where a namespace allows, clients) publish,
// every subscriber receives each publication, and a client that was away
// recovers what it missed from a bounded history. Presence lists a
// channel's subscribers; join and leave events announce them.
//
// Start with [New], which takes a [Store] and a [Broadcaster] (a
// *connection.Manager), and pass the [Service] to the router with
// streamer.WithChannels and to the $connect/$disconnect handler with
// streamer.WithConnectionCleanup. Publish from any Go code with
// [Service.Publish] or, for a tenant's channels, Service.In(tenant).Publish.
// The wire messages are in package protocol (channel.go) and
// docs/PROTOCOL.md#channels, which also states the delivery guarantee.
//
// # Tenants and namespaces
//
// A channel name is scoped to the tenant of the connection that uses it:
// stores key channels by [Key](tenant, name), so no name a client sends
// reaches another tenant's channel. The part of a name before the first ':'
// is its namespace, configured with [WithNamespace] ([Namespace] holds
// history size and TTL, presence, join/leave and client publishing);
// "user:{id}" channels are private to user {id}; an [Authorizer] decides
// the rest.
//
// # Stores
//
// [Store] is the one interface for subscriptions (which are also
// presence), per-channel offset counters and history. Two implementations
// live here, named by backend like the rest of this package's files:
// [MemoryStore] (store_memory.go) and [DynamoStore] (store_dynamo.go).
// They live in this package, not beside pkg/store/memory and
// pkg/store/dynamo, because they implement this package's interface and
// nothing of pkg/store; the DynamoDB table itself is defined with the
// others in dynamo.Tables (so `streamer tables`, CreateTables and the
// deployment template know it), and DynamoStore takes the same client
// interface and table prefix as dynamo.Store. The contract suite every
// store passes is channeltest.Run.
//
// # Fan-out
//
// Publish returns once the publication is stored; delivery runs on
// goroutines the Service owns, one per busy channel, so a channel's
// publications go out in offset order and a slow subscriber never blocks
// the publisher. Each round of a channel's fan-out takes everything
// queued (publications, joins and leaves), lists the subscribers once and
// sends each subscriber the lot in as few posts as fit: one message
// alone, several as a batch frame of at most [MaxFrameBytes]
// (protocol.Batch). So a channel publishing faster than one post per
// subscriber per publication coalesces instead of falling behind, and N
// subscribers joining cost O(N) posts, not O(N²). The queue is bounded
// ([WithQueueLength]): a publisher finding it full waits for room
// ([WithPublishWait]) and is then refused with an [*OverloadedError]
// (OVERLOADED to a client) before anything is stored, so nothing
// acknowledged is dropped. A subscriber a post misses for good (not 410)
// is owed the round's newest publication, posted again on a backoff
// ([WithRedelivery]) until it arrives, the connection is gone or the
// subscription ends; that publication (or any later one) shows the gap in
// its offsets, and the client recovers the rest from history.
//
// Delivery uses Broadcaster.Broadcast (its retries, breaker and
// metrics); a subscriber it finds gone (410) loses its subscriptions. On
// Lambda, call [Service.Flush] before the invocation returns
// (awslambda.WithFlusher); on shutdown, [Service.Shutdown].
// Manager.Broadcast posts each subscriber through the endpoint its
// connection record names, so runtimes, APIs and Regions sharing a store
// reach each other's subscribers, and only a connection's own endpoint
// can make it lose its subscriptions. [SendEach] (one Send per
// subscriber) remains for Broadcasters of the app's own.
package channel
