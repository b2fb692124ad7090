package schedule_test

import (
	"fmt"
	"time"

	"github.com/streamer-go/streamer/runtime/schedule"
)

func ExampleParse() {
	s, err := schedule.Parse("cron(30 9 ? * MON-FRI *)")
	if err != nil {
		fmt.Println(err)
		return
	}
	saturday := time.Date(2026, 1, 3, 12, 0, 0, 0, time.UTC)
	fmt.Println(s.Next(saturday))
	// Output: 2026-01-05 09:30:00 +0000 UTC
}
