package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/plan"
)

// progressFor picks how long work is shown: bars on a terminal, plain lines otherwise, nothing
// with --quiet or --output json (stdout then carries the report, stderr stays quiet).
func (a *app) progressFor(verb string) progressSink {
	if a.quiet || a.json() {
		return nopSink{}
	}
	if f, ok := a.stderr.(*os.File); ok && isTerminal(f) {
		return newBars(f)
	}
	return newLines(a.stderr, verb)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressSink is a fetch.Progress that must be closed when the work ends.
type progressSink interface {
	fetch.Progress
	Close()
}

type nopSink struct{ fetch.NopProgress }

func (nopSink) Close() {}

// bars draws one bar per artifact and one for the total: bytes, rate and ETA.
type bars struct {
	p      *mpb.Progress
	mu     sync.Mutex
	items  map[string]*mpb.Bar
	totals map[string]int64
	total  *mpb.Bar
	sum    int64
}

func newBars(w io.Writer, opts ...mpb.ContainerOption) *bars {
	opts = append([]mpb.ContainerOption{mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(150 * time.Millisecond)}, opts...)
	b := &bars{p: mpb.New(opts...), items: map[string]*mpb.Bar{}, totals: map[string]int64{}}
	b.total = b.p.New(0, mpb.BarStyle(), mpb.BarPriority(1<<30),
		mpb.PrependDecorators(decor.Name("total", decor.WC{C: decor.DindentRight | decor.DextraSpace, W: 28})),
		mpb.AppendDecorators(
			decor.CountersKibiByte("% .1f / % .1f", decor.WC{W: 24}),
			decor.AverageSpeed(decor.SizeB1024(0), " % .1f", decor.WC{W: 14}),
			decor.OnComplete(decor.AverageETA(decor.ET_STYLE_GO, decor.WC{W: 8}), " done"),
		))
	return b
}

func short(name string, n int) string {
	if len(name) <= n {
		return name
	}
	return "…" + name[len(name)-n+1:]
}

func (b *bars) Start(id, name string, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if total < 0 {
		total = 0
	}
	b.items[id] = b.p.New(total, mpb.BarStyle(),
		mpb.PrependDecorators(decor.Name(short(name, 28), decor.WC{C: decor.DindentRight | decor.DextraSpace, W: 28})),
		mpb.AppendDecorators(
			decor.CountersKibiByte("% .1f / % .1f", decor.WC{W: 24}),
			decor.EwmaSpeed(decor.SizeB1024(0), " % .1f", 30, decor.WC{W: 14}),
			decor.OnComplete(decor.EwmaETA(decor.ET_STYLE_GO, 30, decor.WC{W: 8}), " done"),
		))
	b.totals[id] = total
	b.sum += total
	b.total.SetTotal(b.sum, false)
}

func (b *bars) Grow(id string, delta int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bar := b.items[id]; bar != nil {
		b.totals[id] += delta
		bar.SetTotal(b.totals[id], false)
	}
	b.sum += delta
	b.total.SetTotal(b.sum, false)
}

func (b *bars) Add(id string, n int64, _ bool) {
	b.mu.Lock()
	bar := b.items[id]
	b.mu.Unlock()
	if bar != nil {
		bar.EwmaIncrInt64(n, 50*time.Millisecond)
	}
	b.total.IncrInt64(n)
}

func (b *bars) Done(id string, err error) {
	b.mu.Lock()
	bar := b.items[id]
	b.mu.Unlock()
	if bar == nil {
		return
	}
	if err != nil {
		bar.Abort(false)
		return
	}
	bar.SetTotal(-1, true)
}

func (b *bars) Close() {
	b.total.SetTotal(-1, true)
	b.p.Wait()
}

// lines prints one line when an artifact starts and one when it ends, with its size and rate.
type lines struct {
	w     io.Writer
	verb  string
	mu    sync.Mutex
	items map[string]*lineItem
}

type lineItem struct {
	name          string
	total         int64
	done, skipped int64
	start         time.Time
}

var pastTense = map[string]string{"fetch": "fetched", "write": "written", "check": "checked"}

func newLines(w io.Writer, verb string) *lines {
	return &lines{w: w, verb: verb, items: map[string]*lineItem{}}
}

func (l *lines) Start(id, name string, total int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.items[id] = &lineItem{name: name, total: total, start: time.Now()}
	fmt.Fprintf(l.w, "%s %s (%s)\n", l.verb, name, humanBytes(total))
}

func (l *lines) Grow(id string, delta int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if it := l.items[id]; it != nil {
		it.total += delta
	}
}

func (l *lines) Add(id string, n int64, skipped bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if it := l.items[id]; it != nil {
		if skipped {
			it.skipped += n
		} else {
			it.done += n
		}
	}
}

func (l *lines) Done(id string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	it := l.items[id]
	if it == nil {
		return
	}
	if err != nil {
		fmt.Fprintf(l.w, "failed %s\n", it.name)
		return
	}
	el := time.Since(it.start)
	rate := float64(it.done) / max(el.Seconds(), 1e-3)
	msg := fmt.Sprintf("done %s: %s %s", it.name, humanBytes(it.done), pastTense[l.verb])
	if it.skipped > 0 {
		msg += fmt.Sprintf(", %s already stored", humanBytes(it.skipped))
	}
	fmt.Fprintf(l.w, "%s in %s (%s/s)\n", msg, el.Round(time.Millisecond), humanBytes(int64(rate)))
}

func (l *lines) Close() {}

func humanBytes(n int64) string {
	if n < 0 {
		return "size unknown"
	}
	return plan.HumanBytes(uint64(n))
}
