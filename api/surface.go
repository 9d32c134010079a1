package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Surface is what one listener may reach. Who can connect to a listener
// decides what it serves: the producer socket (its group writes events and
// reads flags), the admin socket (operators), and the loopback TCP listener,
// which any local process and any web page the user visits can reach.
type Surface int

const (
	// ProducerSocket serves PostHog's capture and flags endpoints, health,
	// metrics and the read-only /hogrelay/v1/ calls (status, spool stats,
	// flags list and evaluate).
	ProducerSocket Surface = iota
	// AdminSocket serves everything, including the calls that read or
	// destroy other producers' events.
	AdminSocket
	// LoopbackTCP serves only PostHog's capture and flags endpoints and
	// /healthz, /readyz, and refuses browser-originated requests.
	LoopbackTCP
	surfaces
)

func (s Surface) String() string {
	switch s {
	case ProducerSocket:
		return "producer socket"
	case AdminSocket:
		return "admin socket"
	case LoopbackTCP:
		return "TCP listener"
	}
	return "surface " + strconv.Itoa(int(s))
}

// class is who a route is for.
type class int

const (
	// public routes are PostHog's own endpoints and health: every surface.
	public class = iota
	// local routes tell about the agent without touching events: sockets.
	local
	// admin routes read every project's events or change the spool.
	admin
)

// localRoutes are the /hogrelay/v1/ calls producers may make. Every other
// /hogrelay/v1/ route is admin-only, so a new route fails closed.
var localRoutes = map[string]bool{
	"GET /hogrelay/v1/status":          true,
	"GET /hogrelay/v1/spool/stats":     true,
	"GET /hogrelay/v1/flags":           true,
	"POST /hogrelay/v1/flags/evaluate": true,
	"GET /metrics":                     true,
}

func classOf(pattern string) class {
	if localRoutes[pattern] {
		return local
	}
	_, path, _ := strings.Cut(pattern, " ")
	if path == "" {
		path = pattern
	}
	if strings.HasPrefix(path, "/hogrelay/") {
		return admin
	}
	return public
}

func (c class) allowedOn(s Surface) bool {
	switch c {
	case public:
		return true
	case local:
		return s == ProducerSocket || s == AdminSocket
	}
	return s == AdminSocket
}

// router registers every route on one ServeMux per surface; on a surface
// that may not reach a route, the route answers 403 saying where it is
// served instead of 404, so an operator knows to use the admin socket.
type router struct {
	h     *Handler
	muxes [surfaces]*http.ServeMux
}

func newRouter(h *Handler) *router {
	r := &router{h: h}
	for i := range r.muxes {
		r.muxes[i] = http.NewServeMux()
	}
	return r
}

// HandleFunc registers fn under pattern on every surface.
func (rt *router) HandleFunc(pattern string, fn func(http.ResponseWriter, *http.Request)) {
	rt.Handle(pattern, http.HandlerFunc(fn))
}

// Handle registers h under pattern on every surface.
func (rt *router) Handle(pattern string, h http.Handler) {
	c := classOf(pattern)
	if c == admin {
		h = refuseSimplePosts(h)
	}
	for s, mux := range rt.muxes {
		if c.allowedOn(Surface(s)) {
			mux.Handle(pattern, h)
		} else {
			mux.Handle(pattern, rt.notHere(c))
		}
	}
}

func (rt *router) notHere(c class) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := surfaceOf(r)
		msg := r.Method + " " + r.URL.Path + " is not served on the " + s.String() + ": "
		if c == admin {
			msg += "it reads or changes every project's events, so it is served on the admin socket only " +
				"([listen] admin_socket; the CLI finds it, or pass --admin-socket)"
		} else {
			msg += "the TCP listener serves PostHog's capture and flags endpoints and /healthz, /readyz only; use the unix socket"
		}
		writeText(w, http.StatusForbidden, msg)
	})
}

// refuseSimplePosts refuses admin POSTs with a body type a web page can send
// without a CORS preflight (a form or text/plain), should the admin socket
// ever be proxied to somewhere a browser can reach. The CLI sends none.
func refuseSimplePosts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && browserSimpleType(r.Header.Get("Content-Type")) {
			writeText(w, http.StatusUnsupportedMediaType, "admin calls do not take a "+r.Header.Get("Content-Type")+
				" body (a web page can send one without asking); send no body or application/json")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// browserSimpleType is true for the Content-Types a browser sends
// cross-origin without a preflight (the Fetch standard's CORS-safelisted
// request-header values).
func browserSimpleType(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return true // browsers send whatever a page writes; refuse what we cannot read
	}
	switch mt {
	case "text/plain", "application/x-www-form-urlencoded", "multipart/form-data":
		return true
	}
	return false
}

type surfaceKey struct{}

func surfaceOf(r *http.Request) Surface {
	if s, ok := r.Context().Value(surfaceKey{}).(Surface); ok {
		return s
	}
	return ProducerSocket
}

// Access is the TCP listener's policy; SetAccess swaps it on reload.
type Access struct {
	// AllowedOrigins are the browser origins the TCP listener serves.
	AllowedOrigins []string
	// DefinitionsKeys are the bearer keys the TCP listener accepts on the
	// definitions endpoints (personal_api_key and [flags] definitions_keys).
	DefinitionsKeys []string
}

type access struct {
	origins map[string]bool
	keys    [][sha256.Size]byte
}

// SetAccess swaps the TCP listener's policy.
func (h *Handler) SetAccess(a Access) {
	acc := &access{origins: map[string]bool{}}
	for _, o := range a.AllowedOrigins {
		acc.origins[strings.TrimSuffix(strings.ToLower(o), "/")] = true
	}
	for _, k := range a.DefinitionsKeys {
		if k != "" {
			acc.keys = append(acc.keys, sha256.Sum256([]byte(k)))
		}
	}
	h.access.Store(acc)
}

// definitionsKeyOK compares key with every configured key in constant time
// (hashes first, so neither length nor content leaks through timing).
func (h *Handler) definitionsKeyOK(key string) bool {
	acc := h.access.Load()
	if acc == nil {
		return false
	}
	sum := sha256.Sum256([]byte(key))
	ok := 0
	for i := range acc.keys {
		ok |= subtle.ConstantTimeCompare(sum[:], acc.keys[i][:])
	}
	return ok == 1
}

// On returns the handler for one listener's surface.
func (h *Handler) On(s Surface) http.Handler {
	mux := h.mux.muxes[s]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), surfaceKey{}, s))
		if s == LoopbackTCP && !h.browserCheck(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// browserCheck refuses what a web page could make the user's browser send
// to the loopback listener: a Host that is not a loopback name (a DNS
// rebinding page's own name), an Origin not explicitly allowed, and
// cross-site subresource requests (an <img> GET carries no Origin, but
// modern browsers mark it with Sec-Fetch-Site). Server-side SDKs send none
// of these headers.
func (h *Handler) browserCheck(w http.ResponseWriter, r *http.Request) bool {
	if !loopbackHost(r.Host) {
		h.refuseBrowser(w, "Host "+quoteShort(r.Host)+" is not a loopback name; the TCP listener answers only to localhost, 127.0.0.1 and [::1] (DNS rebinding defence)")
		return false
	}
	origin := r.Header.Get("Origin")
	if origin != "" {
		acc := h.access.Load()
		if acc == nil || !acc.origins[strings.TrimSuffix(strings.ToLower(origin), "/")] {
			h.refuseBrowser(w, "requests from web pages are refused: Origin "+quoteShort(origin)+" is not in [listen] allowed_origins")
			return false
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
		return true
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		h.refuseBrowser(w, "requests from web pages are refused: Sec-Fetch-Site is "+quoteShort(r.Header.Get("Sec-Fetch-Site"))+" and there is no allowed Origin")
		return false
	}
	return true
}

func (h *Handler) refuseBrowser(w http.ResponseWriter, msg string) {
	h.metrics.browserRefused.Inc()
	h.log.Debug().Msg(msg)
	writeText(w, http.StatusForbidden, msg)
}

// loopbackHost is true for localhost, *.localhost and loopback IPs, with or
// without a port. An empty Host (HTTP/1.0) has no name to rebind.
func loopbackHost(hostport string) bool {
	if hostport == "" {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// quoteShort quotes a client-sent value for an error body, cut to 80 bytes.
func quoteShort(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strconv.Quote(s)
}
