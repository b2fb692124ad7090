// Package schedule reads EventBridge schedule expressions, rate(...) and
// cron(...), and runs a function on them.
//
// [Parse] returns a [Schedule] whose Next gives the following run time in
// UTC, as EventBridge evaluates it. [Run] calls a function at each run
// time until its context ends, with the scheduled event's JSON.
//
// See https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html
package schedule
