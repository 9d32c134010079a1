package capture

import (
	"fmt"
	"net/url"
)

// CheckHost says whether host can be the PostHog base URL that events and
// flag requests go to: http or https, with a host, and nothing that paths
// appended to it (/batch/, /flags/) would break.
func CheckHost(host string) error {
	u, err := url.Parse(host)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL with a scheme (use e.g. \"https://us.i.posthog.com\")", host)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q must not have a query or fragment", host)
	}
	return nil
}
