package progress_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/streamer-go/streamer/pkg/progress"
	"github.com/streamer-go/streamer/pkg/store"
)

// A processor creates one Publisher per request: send pushes a progress
// message to the client, persist records it in the request store. The
// handler reports freely; Close delivers the final update.
func ExamplePublisher() {
	var mu sync.Mutex
	var last progress.Update
	send := func(ctx context.Context, u progress.Update) error {
		mu.Lock()
		defer mu.Unlock()
		last = u
		return nil
	}
	persist := func(ctx context.Context, u progress.Update) error { return nil }

	ctx := context.Background()
	p := progress.NewPublisher(ctx, send, persist, progress.WithRate(10), progress.WithPersistInterval(time.Second))
	handler := func(r progress.Reporter) {
		for i := 1; i <= 100; i++ {
			_ = r.Report(float64(i), fmt.Sprintf("row %d of 100", i))
		}
	}
	handler(p)
	if err := p.Close(ctx); err != nil {
		fmt.Println("close:", err)
	}
	mu.Lock()
	defer mu.Unlock()
	fmt.Printf("client last saw %.0f%%: %s\n", last.Percentage, last.Message)
	// Output: client last saw 100%: row 100 of 100
}

// The error handler tells the processor that persisting found the request
// cancelled, so it can cancel the handler's context.
func ExampleWithErrorHandler() {
	ctx, cancelHandler := context.WithCancel(context.Background())
	defer cancelHandler()
	persist := func(ctx context.Context, u progress.Update) error {
		return store.ErrConflict // the store says: status is CANCELLED
	}
	p := progress.NewPublisher(context.WithoutCancel(ctx), nil, persist,
		progress.WithErrorHandler(func(err error) {
			if errors.Is(err, store.ErrConflict) {
				cancelHandler()
			}
		}))
	_ = p.Report(10, "starting")
	<-ctx.Done() // the handler sees its context cancelled
	_ = p.Close(context.Background())
	fmt.Println("handler context:", ctx.Err())
	// Output: handler context: context canceled
}

func ExamplePublisher_ReportDetails() {
	p := progress.NewPublisher(context.Background(), func(_ context.Context, u progress.Update) error {
		fmt.Printf("%.0f%% %s %s\n", u.Percentage, u.Message, u.Details)
		return nil
	}, nil)
	_ = p.ReportDetails(40, "importing", map[string]int{"rows": 400})
	_ = p.Close(context.Background())
	// Output: 40% importing {"rows":400}
}
