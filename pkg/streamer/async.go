package streamer

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/streamer-go/streamer/pkg/protocol"
	"github.com/streamer-go/streamer/pkg/store"
)

// requestIDFor derives the server request id from who sent the request and
// the client's own id, keyed with the router's secret (HMAC-SHA256). The
// same client id from the same user always maps to the same request, so a
// submit retried after a reconnect hits store.ErrAlreadyExists instead of
// running twice, while two users' ids never collide; without the key,
// nobody can compute another user's request id from their user and client
// ids.
func requestIDFor(key []byte, id Identity, clientID string) string {
	h := hmac.New(sha256.New, key)
	for _, part := range []string{id.TenantID, id.UserID, clientID} {
		h.Write([]byte(part))
		h.Write([]byte{0}) // separator: ("ab","c") ≠ ("a","bc")
	}
	return "r-" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}

// enqueue queues an async request and acknowledges it. A resubmission gets
// the same ack, followed by the final message if the request has ended; if
// the earlier submission still needs work (its dispatch was lost, or its
// worker died and the lease expired), it is dispatched again, and the
// store's Claim makes sure it runs once.
func (r *Router) enqueue(ctx context.Context, log *slog.Logger, a *action, req *Request) error {
	if a.checker != nil {
		if err := a.checker.checkPayload(req.Payload); err != nil {
			log.DebugContext(ctx, "refused payload", slog.String("action", a.name), slog.Any("error", err))
			return r.reply(ctx, req.origin(), protocol.NewError(req.ID, protocol.CodeInvalidMessage, "payload is not valid for action "+a.name))
		}
	}
	req.RequestID = requestIDFor(r.idKey, req.Identity, req.ID)
	log = log.With(slog.String("request_id", req.RequestID), slog.String("action", a.name))

	// A slot in the in-process pool's queue, taken before the write so
	// that a full queue refuses the request instead of stranding it.
	held, err := r.queue.reserve()
	if err != nil {
		log.WarnContext(ctx, "refusing async request", slog.Any("error", err))
		return r.reply(ctx, req.origin(), protocol.NewError(req.ID, protocol.CodeRateLimited, "server busy, retry later"))
	}
	free := func() {
		if held {
			r.queue.release()
		}
	}
	now := r.now()
	ar := &store.AsyncRequest{
		RequestID:       req.RequestID,
		ClientRequestID: req.ID,
		ConnectionID:    req.ConnectionID,
		UserID:          req.Identity.UserID,
		TenantID:        req.Identity.TenantID,
		Action:          a.name,
		Payload:         req.Payload,
		TTL:             now.Add(r.requestTTL).Unix(),
	}
	// The action's required permissions were checked before this; the
	// handler, wherever and whenever it runs, sees the identity the
	// request was accepted under.
	ar.Permissions = slices.Clone(req.Identity.Permissions)
	dispatch := false
	var finished *store.AsyncRequest // a resubmission of a request that has ended
	var prev *store.AsyncRequest     // the stored request a resubmission found
	err = r.requests.Enqueue(ctx, ar)
	switch {
	case err == nil:
		dispatch = true
		// Info: it ties the correlation ID (trace) to the request ID that the
		// processor's lines carry.
		log.InfoContext(ctx, "queued async request")
	case errors.Is(err, store.ErrAlreadyExists):
		var gerr error
		prev, gerr = r.requests.GetRequest(ctx, req.RequestID)
		if gerr != nil {
			free()
			log.ErrorContext(ctx, "reading resubmitted request", slog.Any("error", gerr))
			return r.reply(ctx, req.origin(), protocol.NewError(req.ID, protocol.CodeInternal, msgInternal))
		}
		dispatch = needsWork(prev, now)
		if prev.Status.Terminal() {
			finished = prev
		}
		r.rebind(ctx, log, prev, req.ConnectionID)
		log.DebugContext(ctx, "resubmitted async request", slog.String("status", string(prev.Status)))
	case errors.Is(err, store.ErrTooLarge):
		free()
		return r.reply(ctx, req.origin(), protocol.NewError(req.ID, protocol.CodeInvalidMessage, "payload too large"))
	default:
		free()
		log.ErrorContext(ctx, "queueing async request", slog.Any("error", err))
		return r.reply(ctx, req.origin(), protocol.NewError(req.ID, protocol.CodeInternal, msgInternal))
	}
	// Ack before dispatching, so the client learns the request id before
	// the first progress message can arrive.
	ack := protocol.NewAck(req.ID, req.RequestID, a.name)
	if prev != nil {
		ack.Attempt = attemptOf(prev)
	}
	replyErr := r.reply(ctx, req.origin(), ack)
	if !dispatch && finished == nil && prev != nil {
		// Running elsewhere: if that worker died, its lease ends soon.
		r.queue.expectLeaseEnd(prev)
	}
	if dispatch && held {
		r.queue.push(req.RequestID)
	} else {
		free()
	}
	if finished != nil && replyErr == nil {
		// The client may have missed the outcome while it was away.
		replyErr = r.reply(ctx, req.origin(), stateMessage(finished))
	}
	return replyErr
}

// needsWork reports whether a stored request should be handed to a worker:
// it is queued, or it is running under a lease that has expired (its
// worker died).
func needsWork(ar *store.AsyncRequest, now time.Time) bool {
	switch ar.Status {
	case store.StatusPending:
		return true
	case store.StatusProcessing:
		return !ar.LeaseUntil.IsZero() && !now.Before(ar.LeaseUntil)
	}
	return false
}

// owned loads a request on behalf of a user. Another user's request is
// reported exactly like a missing one, so ids reveal nothing.
func (r *Router) owned(ctx context.Context, id Identity, requestID string) (*store.AsyncRequest, error) {
	ar, err := r.requests.GetRequest(ctx, requestID)
	if err != nil {
		return nil, err
	}
	if ar.UserID != id.UserID || ar.TenantID != id.TenantID {
		return nil, store.ErrNotFound
	}
	return ar, nil
}

// cancel moves the user's request to CANCELLED. The processor running it
// notices through the store (its next progress write or lease renewal
// fails) and cancels the handler's context, wherever it runs. The client
// gets an error with code CANCELLED, or the final state if the request had
// already ended.
func (r *Router) cancel(ctx context.Context, log *slog.Logger, to origin, id Identity, requestID string) error {
	log = log.With(slog.String("request_id", requestID))
	if _, err := r.owned(ctx, id, requestID); err != nil {
		return r.replyLookupError(ctx, log, to, requestID, err)
	}
	ar, err := r.requests.Cancel(ctx, requestID)
	switch {
	case err == nil:
		log.InfoContext(ctx, "cancelled async request")
		return r.reply(ctx, to, protocol.NewError(requestID, protocol.CodeCancelled, msgCancelled))
	case errors.Is(err, store.ErrConflict):
		// Already ended: tell the client how.
		if ar, err = r.requests.GetRequest(ctx, requestID); err != nil {
			return r.replyLookupError(ctx, log, to, requestID, err)
		}
		return r.reply(ctx, to, stateMessage(ar))
	default:
		return r.replyLookupError(ctx, log, to, requestID, err)
	}
}

// serveResume answers a resume with the request's current state: its
// latest progress while it runs, else its result or error. A request that
// needs work (lost dispatch, expired lease) is dispatched again.
//
// The answer goes out within resumeTimeout of the router taking the resume
// up, whatever the store does, and so does everything else the resume
// does: its store reads before the answer (the connection's identity, then
// the request) share one deadline, resumeReadTimeout, so a slow store costs
// the client that once, not once per read; the answer's send and the rebind
// after it end by resumeTimeout. The last matters as much as the first: a
// connection's messages may be handled one after the other (the local
// gateway does), so a resume that ran long would delay the next one. A
// store that does not answer in time gets the client INTERNAL, and the
// client resumes again later.
func (r *Router) serveResume(ctx context.Context, log *slog.Logger, to origin, requestID string) error {
	ctx, cancel := context.WithTimeout(ctx, resumeTimeout)
	defer cancel()
	rctx, cancelReads := context.WithTimeout(ctx, resumeReadTimeout)
	defer cancelReads()
	log = log.With(slog.String("request_id", requestID))
	id, err := r.identity(rctx, to.connectionID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return r.resumeUnknown(ctx, rctx, log, to, requestID)
	case err != nil:
		log.ErrorContext(ctx, "reading connection", slog.Any("error", err))
		return r.reply(ctx, to, protocol.NewError(requestID, protocol.CodeInternal, msgInternal))
	}
	log = log.With(slog.String("user_id", id.UserID))
	ar, err := r.owned(rctx, id, requestID)
	cancelReads()
	if err != nil {
		return r.replyLookupError(ctx, log, to, requestID, err)
	}
	replyErr := r.reply(ctx, to, stateMessage(ar))
	r.rebind(ctx, log, ar, to.connectionID)
	r.redispatch(ar)
	return replyErr
}

// rebind makes the connection a client resumed or resubmitted a request
// from the request's connection, so that its later messages and its final
// one go there first rather than to a connection the client has left
// (gone, or behind a frozen process). Failing to rebind costs little:
// the outcome still reaches the user's other connections, or waits in the
// record for the next resume.
func (r *Router) rebind(ctx context.Context, log *slog.Logger, ar *store.AsyncRequest, connectionID string) {
	if ar.ConnectionID == connectionID || ar.Status.Terminal() {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, resumeReadTimeout)
	defer cancel()
	if err := r.requests.Rebind(rctx, ar.RequestID, connectionID); err != nil {
		log.InfoContext(ctx, "request not rebound to the resuming connection", slog.Any("error", err))
		return
	}
	ar.ConnectionID = connectionID
}

// redispatch hands a request a client waits for to the in-process pool's
// queue, if the router has one, when it needs work (lost dispatch, expired
// lease); one running under a live lease, perhaps of a worker that died,
// is looked at again when the lease ends, so the client waits the lease,
// not a sweep interval.
func (r *Router) redispatch(ar *store.AsyncRequest) {
	if !needsWork(ar, r.now()) {
		r.queue.expectLeaseEnd(ar)
		return
	}
	if held, _ := r.queue.reserve(); held {
		r.queue.push(ar.RequestID)
	}
}

// resumeUnknown answers a resume from a connection whose record is gone
// (a store wiped or restored, a record expired): the user is unknown, but
// the message came through this very connection, so the request it sent
// from here is its own. A request that is gone is NOT_FOUND; one sent from
// this connection gets its state; any other is refused UNAUTHORIZED, as
// every message of an unknown connection is, and the client connects
// again, which stores its identity anew. rctx bounds its store read, ctx
// the rest (see serveResume).
func (r *Router) resumeUnknown(ctx, rctx context.Context, log *slog.Logger, to origin, requestID string) error {
	ar, err := r.requests.GetRequest(rctx, requestID)
	switch {
	case err != nil:
		return r.replyLookupError(ctx, log, to, requestID, err)
	case ar.ConnectionID != to.connectionID:
		log.InfoContext(ctx, "resume on unknown connection")
		return r.reply(ctx, to, protocol.NewError(requestID, protocol.CodeUnauthorized, "connection is not authenticated"))
	}
	log.InfoContext(ctx, "resume on a connection whose record is gone; answered from the request's own record")
	replyErr := r.reply(ctx, to, stateMessage(ar))
	r.redispatch(ar)
	return replyErr
}

func (r *Router) replyLookupError(ctx context.Context, log *slog.Logger, to origin, requestID string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return r.reply(ctx, to, protocol.NewError(requestID, protocol.CodeNotFound, "request not found"))
	}
	log.ErrorContext(ctx, "reading async request", slog.Any("error", err))
	return r.reply(ctx, to, protocol.NewError(requestID, protocol.CodeInternal, msgInternal))
}

// stateMessage is the message that describes a stored request's state: the
// same message the client would have received last.
func stateMessage(ar *store.AsyncRequest) any {
	switch ar.Status {
	case store.StatusCompleted:
		return protocol.NewComplete(ar.RequestID, ar.Result)
	case store.StatusFailed:
		if ar.Error != nil && ar.Error.Code != "" {
			return protocol.NewError(ar.RequestID, protocol.ErrorCode(ar.Error.Code), ar.Error.Message)
		}
		return protocol.NewError(ar.RequestID, protocol.CodeInternal, msgInternal)
	case store.StatusCancelled:
		return protocol.NewError(ar.RequestID, protocol.CodeCancelled, msgCancelled)
	default:
		m := protocol.NewProgress(ar.RequestID, ar.Progress, ar.ProgressMessage, nil)
		m.Attempt = attemptOf(ar)
		return m
	}
}

// attemptOf is the wire attempt number of a stored request: the run it is
// on, or will be on when next claimed. Attempts counts the runs that ended
// without an outcome (requeued, or taken over from a lost worker), so the
// current run is one more.
func attemptOf(ar *store.AsyncRequest) int {
	return max(ar.Attempts, 0) + 1
}
