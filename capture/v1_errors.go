package capture

import (
	"fmt"
	"net/http"
)

// V1Error refuses a whole v1 request: Status is the HTTP status, Code the
// error tag ("error" in the answer, as PostHog names it) and Description
// the human text ("error_description").
type V1Error struct {
	Status      int
	Code        string
	Description string
}

func (e *V1Error) Error() string { return e.Code + ": " + e.Description }

func v1Errorf(status int, code, format string, args ...any) *V1Error {
	return &V1Error{Status: status, Code: code, Description: fmt.Sprintf(format, args...)}
}

// v1Parse is the 400 PostHog answers for a body serde cannot read.
func v1Parse(format string, args ...any) *V1Error {
	return v1Errorf(http.StatusBadRequest, "request_parsing_error", format, args...)
}

// v1TooBig is v0's tooBig refusal under v1's error tag.
func v1TooBig(n int64) *V1Error {
	return v1Errorf(http.StatusRequestEntityTooLarge, "payload_too_large", "%s", tooBig(n, V1BodyLimit, V1Path).Message)
}
