package httpfile

import (
	"errors"
	"net/url"
	"strings"
)

// RedactURL hides what a URL may carry in secret: user information and the query string are
// replaced by "xxxxx" and the fragment is dropped. Use it for every URL in errors and logs.
// Text that does not parse as a URL is replaced whole.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme == "" && u.Host == "") {
		if strings.ContainsAny(raw, "@?") {
			return "<unparseable URL>"
		}
		return raw
	}
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteString("://")
	if u.User != nil {
		b.WriteString("xxxxx@")
	}
	b.WriteString(u.Host)
	b.WriteString(u.EscapedPath())
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteString("?xxxxx")
	}
	return b.String()
}

// SourceURL is the URL recorded as an artifact's source: the URL as written, less user
// information, query string and fragment, so that no credential reaches the store's index or a
// bundle's inventory.
func SourceURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return RedactURL(raw)
	}
	u.User = nil
	u.RawQuery = ""
	u.ForceQuery = false
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}

// redactErr rewrites the URL inside a *url.Error (what http.Client returns) so that the error
// text carries no credentials or query string.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = RedactURL(ue.URL)
	}
	return err
}
