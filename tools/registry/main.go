// Command registry serves an OCI distribution registry on a loopback address for the local
// stack: Ollama pushes the locally made models here and pulls them back with insecure=true.
//
// It is go-containerregistry's pkg/registry with three additions of ours:
//
//   - storage on disk under -dir: blobs through the package's disk blob handler, and
//     manifests (which the package keeps in memory) saved as files and replayed at start,
//     so a restarted registry still serves what was pushed;
//   - absolute upload locations: the package answers with a path ("/v2/.../uploads/ID"),
//     which the distribution spec allows but Ollama's client cannot follow, so relative
//     Location headers are made absolute against the request's host;
//   - blob downloads redirected to a "storage" host name (-blob-host, default localhost, the
//     same listener under another name), as registry.ollama.ai redirects them to its CDN:
//     Ollama's pull (server/download.go, up to at least v0.17.4) insists on a Location
//     header in the blob GET response and fails with "http: no Location header in
//     response" against a registry that serves blobs directly (ollama/ollama#7244);
//   - an optional bandwidth limit on blob downloads (-blob-rate), so a pull of a small
//     model takes long enough for its streamed progress to be observed.
//
// Usage:
//
//	registry -addr 127.0.0.1:5000 -dir /tmp/registry [-blob-rate 8MiB] [-blob-host localhost]
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5000", "loopback host:port to listen on")
	dir := flag.String("dir", "", "directory for blobs and manifests (empty: keep everything in memory)")
	rate := flag.String("blob-rate", "0", "limit blob downloads to this many bytes per second, e.g. 8MiB (0: no limit)")
	blobHost := flag.String("blob-host", "localhost", "host name (resolving to this listener) that blob downloads are redirected to; empty: serve blobs directly")
	quiet := flag.Bool("quiet", false, "do not log each request")
	flag.Parse()

	if err := run(*addr, *dir, *rate, *blobHost, *quiet); err != nil {
		log.Fatalf("registry: %v", err)
	}
}

func run(addr, dir, rate, blobHost string, quiet bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-addr %q: only loopback addresses are served", addr)
	}
	bytesPerSecond, err := parseSize(rate)
	if err != nil {
		return fmt.Errorf("-blob-rate %q: %w", rate, err)
	}

	logger := log.New(os.Stderr, "registry: ", log.LstdFlags|log.Lmicroseconds)
	opts := []registry.Option{registry.Logger(log.New(io.Discard, "", 0))}
	var store *manifestStore
	if dir != "" {
		blobs := filepath.Join(dir, "blobs")
		if err := os.MkdirAll(blobs, 0o755); err != nil {
			return err
		}
		opts = append(opts, registry.WithBlobHandler(registry.NewDiskBlobHandler(blobs)))
		store = &manifestStore{dir: filepath.Join(dir, "manifests")}
	}
	reg := registry.New(opts...)
	if store != nil {
		n, err := store.replay(reg)
		if err != nil {
			return err
		}
		logger.Printf("replayed %d manifests from %s", n, store.dir)
	}

	var handler http.Handler = &server{reg: reg, store: store, rate: bytesPerSecond}
	if blobHost != "" {
		handler = &redirectBlobs{next: handler, host: blobHost, port: port}
	}
	if !quiet {
		handler = logRequests(logger, handler)
	}

	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	logger.Printf("serving on http://%s (storage: %s, blob rate: %s, blob host: %q)", listener.Addr(), storageName(dir), rate, blobHost)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		_ = srv.Close()
	}()
	if err := srv.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func storageName(dir string) string {
	if dir == "" {
		return "memory"
	}
	return dir
}

// server wraps the registry handler with manifest persistence, absolute upload locations
// and the blob download limit.
type server struct {
	reg   http.Handler
	store *manifestStore
	rate  int64
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w = &absoluteLocation{ResponseWriter: w, host: r.Host}
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") && s.rate > 0 {
		w = &throttled{ResponseWriter: w, rate: s.rate, started: time.Now()}
	}
	if r.Method == http.MethodPut && s.store != nil && isManifest(r.URL.Path) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &statusRecorder{ResponseWriter: w}
		s.reg.ServeHTTP(rec, r)
		if rec.status == http.StatusCreated {
			if err := s.store.save(r.URL.Path, r.Header.Get("Content-Type"), body); err != nil {
				log.Printf("registry: saving manifest %s: %v", r.URL.Path, err)
			}
		}
		return
	}
	s.reg.ServeHTTP(w, r)
}

// redirectBlobs answers a blob GET that did not arrive under the storage host name with a
// 307 to the same path under that name, the way registries backed by a CDN do.
type redirectBlobs struct {
	next http.Handler
	host string
	port string
}

func (b *redirectBlobs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && isBlob(r.URL.Path) {
		if hostname, _, err := net.SplitHostPort(r.Host); err != nil || hostname != b.host {
			target := url.URL{Scheme: "http", Host: net.JoinHostPort(b.host, b.port), Path: r.URL.Path, RawQuery: r.URL.RawQuery}
			http.Redirect(w, r, target.String(), http.StatusTemporaryRedirect)
			return
		}
	}
	b.next.ServeHTTP(w, r)
}

// isBlob reports whether path is /v2/<name>/blobs/<digest>.
func isBlob(path string) bool {
	elem := strings.Split(strings.Trim(path, "/"), "/")
	return len(elem) >= 4 && elem[0] == "v2" && elem[len(elem)-2] == "blobs" && strings.Contains(elem[len(elem)-1], ":")
}

// isManifest reports whether path is /v2/<name>/manifests/<reference>.
func isManifest(path string) bool {
	elem := strings.Split(strings.Trim(path, "/"), "/")
	return len(elem) >= 4 && elem[0] == "v2" && elem[len(elem)-2] == "manifests"
}

// manifestStore keeps pushed manifests as JSON files, one per repository and reference.
type manifestStore struct {
	dir string
	mu  sync.Mutex
}

type savedManifest struct {
	Path        string `json:"path"`
	ContentType string `json:"contentType"`
	Body        string `json:"body"`
}

func (m *manifestStore) save(path, contentType string, body []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return err
	}
	data, err := json.Marshal(savedManifest{
		Path: path, ContentType: contentType, Body: base64.StdEncoding.EncodeToString(body),
	})
	if err != nil {
		return err
	}
	name := filepath.Join(m.dir, base64.RawURLEncoding.EncodeToString([]byte(path))+".json")
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// replay PUTs every saved manifest into the in-memory manifest table of reg.
func (m *manifestStore) replay(reg http.Handler) (int, error) {
	files, err := filepath.Glob(filepath.Join(m.dir, "*.json"))
	if err != nil {
		return 0, err
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return 0, err
		}
		var saved savedManifest
		if err := json.Unmarshal(data, &saved); err != nil {
			return 0, fmt.Errorf("%s: %w", file, err)
		}
		body, err := base64.StdEncoding.DecodeString(saved.Body)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", file, err)
		}
		req := httptest.NewRequest(http.MethodPut, saved.Path, bytes.NewReader(body))
		req.Header.Set("Content-Type", saved.ContentType)
		rec := httptest.NewRecorder()
		reg.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			return 0, fmt.Errorf("replaying %s: %d %s", saved.Path, rec.Code, rec.Body.String())
		}
	}
	return len(files), nil
}

// absoluteLocation turns a Location header that is a path into an absolute http URL.
type absoluteLocation struct {
	http.ResponseWriter
	host string
}

func (a *absoluteLocation) WriteHeader(code int) {
	if loc := a.Header().Get("Location"); strings.HasPrefix(loc, "/") {
		a.Header().Set("Location", "http://"+a.host+loc)
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *absoluteLocation) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// throttled paces the body it writes to rate bytes per second.
type throttled struct {
	http.ResponseWriter
	rate    int64
	started time.Time
	written int64
}

func (t *throttled) Write(p []byte) (int, error) {
	const chunk = 32 << 10
	total := 0
	for len(p) > 0 {
		n := min(len(p), chunk)
		w, err := t.ResponseWriter.Write(p[:n])
		total += w
		t.written += int64(w)
		if err != nil {
			return total, err
		}
		_ = http.NewResponseController(t.ResponseWriter).Flush()
		p = p[n:]
		due := t.started.Add(time.Duration(float64(t.written) / float64(t.rate) * float64(time.Second)))
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
	}
	return total, nil
}

func (t *throttled) Unwrap() http.ResponseWriter { return t.ResponseWriter }

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func logRequests(logger *log.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		logger.Printf("%s %s %d %s", r.Method, r.URL.Path, rec.status, time.Since(started).Round(time.Millisecond))
	})
}

// parseSize reads "0", "1048576", "512KiB", "8MiB", "1GiB" (also KB/MB/GB as powers of 1000).
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		factor int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1},
	}
	s = strings.TrimSpace(s)
	factor := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, factor = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.factor
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a size")
	}
	return int64(n * float64(factor)), nil
}
