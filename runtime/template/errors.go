package template

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched by every error Load returns for a template it
// cannot read or run (as opposed to a file it cannot open).
var ErrInvalid = errors.New("template: invalid template")

// Error locates a problem in a template: the resource (or "Parameters",
// "Conditions", "Globals") and the field within it.
type Error struct {
	// Resource is the logical ID of the resource, or the section name for
	// problems outside Resources. Empty for the file as a whole.
	Resource string
	// Field is the dotted path of the property, e.g.
	// "Properties.Environment.Variables.TABLE". Empty for the resource as
	// a whole.
	Field string
	// Err is what is wrong.
	Err error
}

func (e *Error) Error() string {
	switch {
	case e.Resource == "":
		return fmt.Sprintf("template: %v", e.Err)
	case e.Field == "":
		return fmt.Sprintf("template: %s: %v", e.Resource, e.Err)
	default:
		return fmt.Sprintf("template: %s: %s: %v", e.Resource, e.Field, e.Err)
	}
}

// Unwrap lets errors.Is match ErrInvalid and the underlying cause.
func (e *Error) Unwrap() []error { return []error{ErrInvalid, e.Err} }

func errorf(resource, field, format string, args ...any) *Error {
	return &Error{Resource: resource, Field: field, Err: fmt.Errorf(format, args...)}
}
