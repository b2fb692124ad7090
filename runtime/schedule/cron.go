package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

type cronSpec struct {
	minute, hour, dom, month, dow, year map[int]bool
	domAny, dowAny                      bool
}

var months = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
var days = map[string]int{"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}

func parseCron(text string) (*cronSpec, error) {
	f := strings.Fields(text)
	if len(f) != 6 {
		return nil, errors.New("want six fields: minutes hours day-of-month month day-of-week year")
	}
	c := &cronSpec{}
	var err error
	if c.minute, err = field(f[0], 0, 59, nil); err != nil {
		return nil, fmt.Errorf("minutes: %w", err)
	}
	if c.hour, err = field(f[1], 0, 23, nil); err != nil {
		return nil, fmt.Errorf("hours: %w", err)
	}
	c.domAny = f[2] == "?" || f[2] == "*"
	if c.dom, err = field(f[2], 1, 31, nil); err != nil {
		return nil, fmt.Errorf("day-of-month: %w", err)
	}
	if c.month, err = field(f[3], 1, 12, months); err != nil {
		return nil, fmt.Errorf("month: %w", err)
	}
	c.dowAny = f[4] == "?" || f[4] == "*"
	if c.dow, err = field(f[4], 1, 7, days); err != nil {
		return nil, fmt.Errorf("day-of-week: %w", err)
	}
	if c.year, err = field(f[5], 1970, 2199, nil); err != nil {
		return nil, fmt.Errorf("year: %w", err)
	}
	if (f[2] == "?") == (f[4] == "?") {
		return nil, errors.New("exactly one of day-of-month and day-of-week must be ?")
	}
	return c, nil
}

func field(s string, lo, hi int, names map[string]int) (map[int]bool, error) {
	out := map[int]bool{}
	if strings.ContainsAny(s, "LW#") && !isName(s, names) {
		return nil, fmt.Errorf("%q: L, W and # are not supported locally", s)
	}
	for _, part := range strings.Split(s, ",") {
		step := 1
		if base, st, ok := strings.Cut(part, "/"); ok {
			n, err := strconv.Atoi(st)
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("%q: bad step", part)
			}
			step, part = n, base
		}
		from, to := lo, hi
		switch {
		case part == "*" || part == "?":
		case strings.Contains(part, "-"):
			a, b, _ := strings.Cut(part, "-")
			var err error
			if from, err = value(a, names); err != nil {
				return nil, err
			}
			if to, err = value(b, names); err != nil {
				return nil, err
			}
		default:
			v, err := value(part, names)
			if err != nil {
				return nil, err
			}
			from = v
			if !strings.Contains(s, "/") {
				to = v
			}
		}
		if from < lo || to > hi || from > to {
			return nil, fmt.Errorf("%q: out of %d..%d", part, lo, hi)
		}
		for v := from; v <= to; v += step {
			out[v] = true
		}
	}
	return out, nil
}

func isName(s string, names map[string]int) bool {
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '-' || r == '/' }) {
		if _, ok := names[strings.ToUpper(p)]; !ok {
			if _, err := strconv.Atoi(p); err != nil && p != "*" && p != "?" {
				return false
			}
		}
	}
	return true
}

func value(s string, names map[string]int) (int, error) {
	if v, ok := names[strings.ToUpper(s)]; ok {
		return v, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return n, nil
}

// next walks minute by minute: at most five years of minutes, a few
// milliseconds, and only once per run.
func (c *cronSpec) next(t time.Time) time.Time {
	t = t.Truncate(time.Minute).Add(time.Minute)
	end := t.AddDate(5, 0, 0)
	for ; t.Before(end); t = t.Add(time.Minute) {
		if !c.year[t.Year()] || !c.month[int(t.Month())] {
			continue
		}
		dayOK := (c.domAny || c.dom[t.Day()]) && (c.dowAny || c.dow[int(t.Weekday())+1])
		if !dayOK || !c.hour[t.Hour()] || !c.minute[t.Minute()] {
			continue
		}
		return t
	}
	return time.Time{}
}
