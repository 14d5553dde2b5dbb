package sagemaker

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/registrywatch/registrywatch/internal/clock"
)

// Retry policy of every SageMaker and CloudTrail call: the SDK's standard
// retryer (throttling, 5xx, transport errors) with more attempts, no client
// retry quota, and backoff waited on the Clock.
const (
	maxAttempts      = 8
	maxBackoff       = 10 * time.Second
	throttleBackoff  = time.Second
	transientBackoff = 100 * time.Millisecond
)

var throttles = retry.IsErrorThrottles(retry.DefaultThrottles)

// newRetryer returns the retryer of the calls made under ctx: the wait
// between attempts happens on clk and ends early when ctx is done.
func newRetryer(ctx context.Context, clk clock.Clock) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = maxAttempts
		o.RateLimiter = ratelimit.None
		o.Backoff = clockBackoff{clk: clk, ctx: ctx}
	})
}

// clockBackoff waits the backoff itself on the Clock and hands the SDK a zero
// delay, so retries follow a fake clock in tests.
type clockBackoff struct {
	clk clock.Clock
	ctx context.Context
}

// BackoffDelay waits base·2^(attempt-1), capped at maxBackoff, with jitter in
// [d/2, d]; base is 1 s after throttling (so a retried LookupEvents keeps
// within CloudTrail's 2 requests/s) and 100 ms otherwise.
func (b clockBackoff) BackoffDelay(attempt int, err error) (time.Duration, error) {
	base := transientBackoff
	if throttles.IsErrorThrottle(err).Bool() {
		base = throttleBackoff
	}
	d := base << min(max(attempt-1, 0), 16)
	if d > maxBackoff || d <= 0 {
		d = maxBackoff
	}
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	if !clock.Sleep(b.clk, d, b.ctx.Done()) {
		return 0, context.Cause(b.ctx)
	}
	return 0, nil
}

// bucket is a token bucket of capacity one on the Clock: callers of wait are
// spaced at least interval apart (CloudTrail LookupEvents: 2 requests/s).
type bucket struct {
	clk      clock.Clock
	interval time.Duration

	mu   sync.Mutex
	next time.Time
}

// wait blocks until the caller may send one request, or ctx is done.
func (b *bucket) wait(ctx context.Context) error {
	b.mu.Lock()
	now := b.clk.Now()
	at := b.next
	if at.Before(now) {
		at = now
	}
	b.next = at.Add(b.interval)
	b.mu.Unlock()
	if !clock.Sleep(b.clk, at.Sub(now), ctx.Done()) {
		return context.Cause(ctx)
	}
	return nil
}
