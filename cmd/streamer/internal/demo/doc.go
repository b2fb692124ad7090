// Package demo is the application `streamer dev` runs when it is not given
// one: $connect stores the connection, $disconnect removes it, and messages
// in Streamer's request envelope are answered through @connections by the
// ConnectionManager, the same loop a deployed app runs on Lambda.
//
// Actions: echo (data = the payload), whoami (data = the connection ID and
// the identity $connect stored) and broadcast (the payload, as a response,
// to every connection of the caller's tenant, the caller included). With
// auth off every connection is user "anonymous" in tenant "default"; the
// identity always comes from the store, never from the client's messages or
// query string.
//
// Start with [New] and [App.Routes]. The dispatch in [App.Message] is
// deliberately small: it is meant to be replaced by the router of package
// streamer.
package demo
