package manifest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Mirrors maps an upstream host (host or host:port, lowercase) to the
// place every fetcher uses instead: another host[:port], or a base URL
// (http or https, a host, and an optional path prefix).
//
//	docker.io: mirror.corp.example:5000
//	releases.mattermost.com: https://proxy.corp.example/mattermost-releases
type Mirrors map[string]string

// Mirror is a parsed Mirrors value.
type Mirror struct {
	// Scheme is "http" or "https" when the value is a URL, and "" when it
	// is a bare host[:port] (the caller keeps its own scheme).
	Scheme string
	// Host is host[:port].
	Host string
	// Path is the path prefix without a trailing slash, or "".
	Path string
}

// String formats the mirror as it would be written in a manifest.
func (m Mirror) String() string {
	if m.Scheme == "" {
		return m.Host
	}
	return m.Scheme + "://" + m.Host + m.Path
}

var hostnameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$`)

// dockerHubHosts are the names Docker Hub's registry goes by; a mirror for
// any of them applies to all of them.
var dockerHubHosts = []string{"docker.io", "index.docker.io", "registry-1.docker.io"}

// ParseMirror parses a Mirrors value: host[:port], or an http(s) base URL
// with an optional path prefix and no credentials, query or fragment.
func ParseMirror(s string) (Mirror, error) {
	if !strings.Contains(s, "://") {
		if strings.Contains(s, "/") {
			return Mirror{}, fmt.Errorf("mirror %q has a path but no scheme; write https://%s", s, s)
		}
		if err := checkHost(s); err != nil {
			return Mirror{}, fmt.Errorf("mirror %w", err)
		}
		return Mirror{Host: s}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return Mirror{}, fmt.Errorf("mirror is not a valid URL: %w", urlErrorCause(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return Mirror{}, fmt.Errorf("mirror scheme %q is not supported; use https:// or http://", u.Scheme)
	case u.User != nil:
		return Mirror{}, errors.New("mirror must not contain credentials (user:password@); configure them outside the manifest")
	case u.RawQuery != "" || u.ForceQuery:
		return Mirror{}, errors.New("mirror must not have a query (?...)")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return Mirror{}, errors.New("mirror must not have a fragment (#...)")
	case strings.Contains(u.Path, "%") || strings.Contains(s, "%"):
		return Mirror{}, errors.New("mirror path must not contain percent-escapes")
	}
	if err := checkHost(u.Host); err != nil {
		return Mirror{}, fmt.Errorf("mirror %w", err)
	}
	return Mirror{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimRight(u.Path, "/")}, nil
}

// checkHost checks host[:port].
func checkHost(s string) error {
	switch {
	case s == "":
		return errors.New("host is empty")
	case strings.Contains(s, "://"):
		return fmt.Errorf("host %q is a URL; give only host[:port]", s)
	case s != strings.ToLower(s):
		return fmt.Errorf("host %q must be lowercase; write %q", s, strings.ToLower(s))
	}
	u, err := url.Parse("//" + s)
	if err != nil || u.Host != s || u.User != nil || u.Hostname() == "" {
		return fmt.Errorf("host %q is not host or host:port", s)
	}
	h := u.Hostname()
	if strings.HasPrefix(u.Host, "[") {
		if net.ParseIP(h) == nil {
			return fmt.Errorf("host %q is not a valid IPv6 address", s)
		}
	} else if !hostnameRE.MatchString(h) {
		return fmt.Errorf("host %q is not a valid host name", s)
	}
	if p := u.Port(); p != "" || strings.HasSuffix(s, ":") {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("host %q has an invalid port", s)
		}
	}
	return nil
}

// lookup returns the mirror for the first of hosts that has one.
func (m Mirrors) lookup(hosts ...string) (Mirror, bool, error) {
	for _, h := range hosts {
		v, ok := m[strings.ToLower(h)]
		if !ok {
			continue
		}
		mir, err := ParseMirror(v)
		if err != nil {
			return Mirror{}, false, fmt.Errorf("mirror for %s: %w", h, err)
		}
		return mir, true, nil
	}
	return Mirror{}, false, nil
}

func registryCandidates(host string) []string {
	host = strings.ToLower(host)
	for _, d := range dockerHubHosts {
		if host == d {
			out := []string{host}
			for _, o := range dockerHubHosts {
				if o != host {
					out = append(out, o)
				}
			}
			return out
		}
	}
	return []string{host}
}

// LookupRegistry returns the mirror for an image registry host. The names
// of Docker Hub (docker.io, index.docker.io, registry-1.docker.io) all match
// a mirror given for any of them. A mirror with Scheme "http" is to be
// reached over plain HTTP.
func (m Mirrors) LookupRegistry(host string) (Mirror, bool) {
	mir, ok, err := m.lookup(registryCandidates(host)...)
	return mir, ok && err == nil
}

// LookupHost returns the mirror for host[:port] as written in a URL. A key
// without a port also matches the host on the scheme's default port.
func (m Mirrors) LookupHost(scheme, host string) (Mirror, bool) {
	mir, ok, err := m.lookup(urlCandidates(scheme, host)...)
	return mir, ok && err == nil
}

func urlCandidates(scheme, host string) []string {
	host = strings.ToLower(host)
	out := []string{host}
	def := map[string]string{"http": "80", "https": "443"}[strings.ToLower(scheme)]
	h, port, err := net.SplitHostPort(host)
	switch {
	case err != nil: // no port
		if def != "" {
			out = append(out, net.JoinHostPort(strings.Trim(host, "[]"), def))
		}
	case port == def:
		if strings.Contains(h, ":") {
			h = "[" + h + "]"
		}
		out = append(out, h)
	}
	return out
}

// RewriteRegistry returns the host[:port] to pull from instead of the
// registry host, or host unchanged when it has no mirror. Use
// RewriteReference to also apply a mirror's path prefix.
func (m Mirrors) RewriteRegistry(host string) string {
	if mir, ok := m.LookupRegistry(host); ok {
		return mir.Host
	}
	return host
}

// RewriteReference rewrites an image reference to its mirror: the
// registry is replaced by the mirror's host and path prefix, and the
// repository, tag and digest are kept. Docker Hub short names are
// expanded (postgres:15-alpine has registry docker.io and repository
// library/postgres). A reference whose registry has no mirror is
// returned unchanged.
func (m Mirrors) RewriteReference(ref string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("rewrite image reference: %w", err)
	}
	mir, ok, err := m.lookup(registryCandidates(r.Context().RegistryStr())...)
	if err != nil {
		return "", fmt.Errorf("rewrite image reference: %w", err)
	}
	if !ok {
		return ref, nil
	}
	base, dig, hasDig := strings.Cut(ref, "@")
	suffix := ""
	last := strings.LastIndexByte(base, '/') + 1
	if c := strings.IndexByte(base[last:], ':'); c >= 0 {
		suffix = base[last+c:]
	}
	if hasDig {
		suffix += "@" + dig
	}
	return mir.Host + mir.Path + "/" + r.Context().RepositoryStr() + suffix, nil
}

// RewriteURL rewrites an http(s) URL whose host has a mirror: a bare
// host[:port] mirror replaces the host only; a base URL mirror replaces
// the scheme and host and puts its path prefix before the URL's path.
// Query strings are kept. A URL whose host has no mirror is returned
// unchanged.
func (m Mirrors) RewriteURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("rewrite url: %w", urlErrorCause(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("rewrite url: scheme %q is not http or https", u.Scheme)
	}
	mir, ok, err := m.lookup(urlCandidates(u.Scheme, u.Host)...)
	if err != nil {
		return "", fmt.Errorf("rewrite url: %w", err)
	}
	if !ok {
		return raw, nil
	}
	if mir.Scheme != "" {
		u.Scheme = mir.Scheme
	}
	u.Host = mir.Host
	if mir.Path != "" {
		if u.RawPath != "" {
			u.RawPath = mir.Path + u.RawPath
		}
		u.Path = mir.Path + u.Path
	}
	return u.String(), nil
}

// urlErrorCause drops the URL from a url.Error, so that credentials or
// tokens in it do not reach logs.
func urlErrorCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
