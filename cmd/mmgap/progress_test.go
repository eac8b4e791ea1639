package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/vbauerster/mpb/v8"
)

// The terminal renderer draws a bar per artifact and one for the total, with sizes, rate and ETA.
func TestBarsRender(t *testing.T) {
	var buf bytes.Buffer
	b := newBars(&buf, mpb.WithAutoRefresh(), mpb.WithWidth(140)) // a buffer is no terminal: draw anyway
	b.Start("a", "mattermost-enterprise", 4<<20)
	b.Start("b", "postgres", 1<<20)
	b.Add("a", 2<<20, false)
	b.Grow("b", 1<<20)
	b.Add("b", 2<<20, true)
	b.Add("a", 2<<20, false)
	b.Done("a", nil)
	b.Done("b", errors.New("boom"))
	b.Close()
	out := buf.String()
	for _, want := range []string{"mattermost-enterprise", "postgres", "total", "4.0 MiB / 4.0 MiB", "6.0 MiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("bars output lacks %q:\n%s", want, out)
		}
	}
}

// The plain renderer prints a line when an artifact starts and one when it ends.
func TestLinesRender(t *testing.T) {
	var buf bytes.Buffer
	l := newLines(&buf, "fetch")
	l.Start("a", "postgres", 3<<20)
	l.Add("a", 1<<20, true)
	l.Add("a", 2<<20, false)
	l.Done("a", nil)
	l.Start("b", "broken", -1)
	l.Done("b", errors.New("boom"))
	out := buf.String()
	for _, want := range []string{"fetch postgres (3.0 MiB)\n", "done postgres: 2.0 MiB fetched, 1.0 MiB already stored in ", "fetch broken (size unknown)\n", "failed broken\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("lines output lacks %q:\n%s", want, out)
		}
	}
}
