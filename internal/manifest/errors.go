package manifest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Position is a place in a manifest file; Line and Col count from 1, and 0
// means unknown.
type Position struct {
	Line int
	Col  int
}

// Error is one problem in a manifest.
type Error struct {
	// File is the manifest's file name as given to Parse or Load.
	File string
	// Line and Col locate the problem, counting from 1; 0 means unknown.
	Line, Col int
	// Path names the offending value, e.g. images[2].platforms[0]; empty
	// for the document as a whole.
	Path string
	// Msg says what is wrong and, where possible, how to fix it. It names
	// the path itself.
	Msg string
}

// Error formats the problem as FILE:LINE:COL: message, leaving out the
// column, or line and column, when unknown.
func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	default:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
}

// Errors is every problem found in a manifest, in file order.
type Errors struct {
	// List holds the problems, sorted by line and column.
	List []*Error
	// Truncated is set when more than MaxErrors problems were found and
	// the rest were not collected.
	Truncated bool
}

// Error prints one problem per line.
func (e *Errors) Error() string {
	var b strings.Builder
	for i, err := range e.List {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(err.Error())
	}
	if e.Truncated && len(e.List) > 0 {
		fmt.Fprintf(&b, "\n%s: too many errors; stopped after %d", e.List[0].File, len(e.List))
	}
	return b.String()
}

// Unwrap lets errors.As find the individual *Error values.
func (e *Errors) Unwrap() []error {
	out := make([]error, len(e.List))
	for i, err := range e.List {
		out[i] = err
	}
	return out
}

// collector gathers problems up to MaxErrors.
type collector struct {
	file string
	errs Errors
}

// full reports whether no more problems will be recorded.
func (c *collector) full() bool { return c.errs.Truncated }

func (c *collector) add(pos Position, path, format string, args ...any) {
	if len(c.errs.List) >= MaxErrors {
		c.errs.Truncated = true
		return
	}
	c.errs.List = append(c.errs.List, &Error{
		File: c.file, Line: pos.Line, Col: pos.Col, Path: path,
		Msg: fmt.Sprintf(format, args...),
	})
}

// err returns the collected problems sorted by position, or nil.
func (c *collector) err() error {
	if len(c.errs.List) == 0 {
		return nil
	}
	slices.SortStableFunc(c.errs.List, func(a, b *Error) int {
		if n := cmp.Compare(a.Line, b.Line); n != 0 {
			return n
		}
		return cmp.Compare(a.Col, b.Col)
	})
	return &c.errs
}
