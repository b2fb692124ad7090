package lambdart

import (
	"bytes"
	"io"
	"sync"
)

// lineOutput is the shared destination of every process's output; lines
// from concurrent processes never interleave within a line.
type lineOutput struct {
	mu sync.Mutex
	w  io.Writer
}

// prefixed returns a writer that prefixes each line with "name | ". It
// holds a partial line until its newline arrives.
func (o *lineOutput) prefixed(name string) io.Writer {
	return &prefixWriter{o: o, prefix: []byte(name + " | ")}
}

type prefixWriter struct {
	o      *lineOutput
	prefix []byte
	buf    []byte
}

// maxLine bounds a line without a newline: longer ones are cut.
const maxLine = 64 * 1024

func (p *prefixWriter) Write(b []byte) (int, error) {
	n := len(b)
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			if len(p.buf) < maxLine {
				return n, nil
			}
			i = len(p.buf) - 1
		}
		line := p.buf[:i+1]
		p.o.mu.Lock()
		_, _ = p.o.w.Write(append(append([]byte(nil), p.prefix...), line...))
		if line[len(line)-1] != '\n' {
			_, _ = p.o.w.Write([]byte{'\n'})
		}
		p.o.mu.Unlock()
		p.buf = p.buf[i+1:]
	}
}
