package lambdart

import (
	"hash/fnv"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// watcher notices changes to files by polling their sizes and
// modification times: no OS-specific API, and a few hundred files cost
// little every half second.
type watcher struct {
	paths []string
	last  uint64
}

func newWatcher(paths []string) *watcher {
	w := &watcher{paths: paths}
	w.last = w.fingerprint()
	return w
}

// skipDir leaves out folders that change without being code (VCS data)
// or are too large to poll (dependencies; reinstalling them also touches
// package-lock.json, which is watched).
func skipDir(name string) bool {
	return name == "node_modules" || name == "__pycache__" || (strings.HasPrefix(name, ".") && name != ".")
}

func (w *watcher) fingerprint() uint64 {
	h := fnv.New64a()
	for _, root := range w.paths {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() && path != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			if d.IsDir() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			h.Write([]byte(path))
			h.Write([]byte(strconv.FormatInt(info.Size(), 10)))
			h.Write([]byte(strconv.FormatInt(info.ModTime().UnixNano(), 10)))
			return nil
		})
	}
	return h.Sum64()
}

func (w *watcher) changed() bool {
	fp := w.fingerprint()
	if fp == w.last {
		return false
	}
	w.last = fp
	return true
}

// watch restarts the function's processes when watched files change.
func (f *Function) watch(w *watcher) {
	t := time.NewTicker(f.cfg.WatchInterval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			if w.changed() {
				f.log.Info("lambdart: code changed; the next invocation starts a fresh process")
				f.restart()
			}
		}
	}
}
