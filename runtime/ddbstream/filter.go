package ddbstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrFilter is wrapped by the errors of CompileFilter.
var ErrFilter = errors.New("ddbstream: invalid filter pattern")

// Filter is one FilterCriteria pattern, in the EventBridge pattern
// language Lambda uses: fields match when the record's value is one of the
// listed values, or passes one of the listed operators (prefix, suffix,
// anything-but, numeric, exists, equals-ignore-case).
type Filter struct {
	pattern map[string]any
}

// CompileFilter parses a pattern's JSON text.
func CompileFilter(text string) (*Filter, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFilter, err)
	}
	if err := checkPattern(m); err != nil {
		return nil, err
	}
	return &Filter{pattern: m}, nil
}

func checkPattern(m map[string]any) error {
	for k, v := range m {
		switch x := v.(type) {
		case map[string]any:
			if err := checkPattern(x); err != nil {
				return err
			}
		case []any:
			for _, e := range x {
				if op, ok := e.(map[string]any); ok {
					for name := range op {
						switch name {
						case "prefix", "suffix", "anything-but", "numeric", "exists", "equals-ignore-case":
						default:
							return fmt.Errorf("%w: %s: operator %q is not supported", ErrFilter, k, name)
						}
					}
				}
			}
		default:
			return fmt.Errorf("%w: %s: want a list of values or an object", ErrFilter, k)
		}
	}
	return nil
}

// Match reports whether a record (as JSON-decoded values) passes.
func (f *Filter) Match(doc map[string]any) bool { return matchObject(f.pattern, doc) }

func matchObject(pattern, doc map[string]any) bool {
	for k, pv := range pattern {
		dv, present := doc[k]
		switch p := pv.(type) {
		case map[string]any:
			sub, ok := dv.(map[string]any)
			if !ok {
				// A nested pattern of only exists:false matches absence.
				if !present && onlyAbsent(p) {
					continue
				}
				return false
			}
			if !matchObject(p, sub) {
				return false
			}
		case []any:
			if !matchValues(p, dv, present) {
				return false
			}
		}
	}
	return true
}

func onlyAbsent(p map[string]any) bool {
	for _, v := range p {
		list, ok := v.([]any)
		if !ok || len(list) != 1 {
			return false
		}
		op, ok := list[0].(map[string]any)
		if !ok || op["exists"] != false {
			return false
		}
	}
	return true
}

// matchValues: the value (or one element of an array value) matches one
// of the pattern's entries.
func matchValues(entries []any, v any, present bool) bool {
	for _, e := range entries {
		if op, ok := e.(map[string]any); ok {
			if ex, ok := op["exists"]; ok {
				if ex == present {
					return true
				}
				continue
			}
		}
		if !present {
			continue
		}
		vals := []any{v}
		if arr, ok := v.([]any); ok {
			vals = arr
		}
		for _, x := range vals {
			if matchEntry(e, x) {
				return true
			}
		}
	}
	return false
}

func matchEntry(e, v any) bool {
	op, ok := e.(map[string]any)
	if !ok {
		return equalScalar(e, v)
	}
	s, isStr := v.(string)
	for name, arg := range op {
		switch name {
		case "prefix":
			a, _ := arg.(string)
			return isStr && strings.HasPrefix(s, a)
		case "suffix":
			a, _ := arg.(string)
			return isStr && strings.HasSuffix(s, a)
		case "equals-ignore-case":
			a, _ := arg.(string)
			return isStr && strings.EqualFold(s, a)
		case "anything-but":
			list, ok := arg.([]any)
			if !ok {
				list = []any{arg}
			}
			for _, x := range list {
				if equalScalar(x, v) {
					return false
				}
			}
			return true
		case "numeric":
			return matchNumeric(arg, v)
		}
	}
	return false
}

func equalScalar(a, b any) bool {
	switch x := a.(type) {
	case float64:
		switch y := b.(type) {
		case float64:
			return x == y
		case string: // DynamoDB numbers are strings in the record: {"N":"5"}
			f, err := strconv.ParseFloat(y, 64)
			return err == nil && f == x
		}
		return false
	default:
		return a == b
	}
}

func matchNumeric(arg, v any) bool {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case string:
		var err error
		if f, err = strconv.ParseFloat(x, 64); err != nil {
			return false
		}
	default:
		return false
	}
	list, ok := arg.([]any)
	if !ok || len(list)%2 != 0 {
		return false
	}
	for i := 0; i < len(list); i += 2 {
		op, _ := list[i].(string)
		n, ok := list[i+1].(float64)
		if !ok {
			return false
		}
		var pass bool
		switch op {
		case "=":
			pass = f == n
		case "<":
			pass = f < n
		case "<=":
			pass = f <= n
		case ">":
			pass = f > n
		case ">=":
			pass = f >= n
		}
		if !pass {
			return false
		}
	}
	return true
}
