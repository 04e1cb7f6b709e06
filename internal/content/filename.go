package content

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/stratadev/strata"
)

// MaxFilenameBytes bounds the name of an uploaded file.
const MaxFilenameBytes = 255 // as ValidateFilename says

// ValidateFilename accepts "" (no name) or a plain file name: valid UTF-8,
// at most MaxFilenameBytes bytes, no path separators, no control or
// format characters, not "." or "..", no leading or trailing space. Any
// other name is refused with invalid "filename" rather than cleaned, so
// that the name the uploader sees is the one they gave.
func ValidateFilename(name string) error {
	if name == "" {
		return nil
	}
	switch {
	case !utf8.ValidString(name):
		return strata.Invalid("filename", "must be UTF-8")
	case len(name) > MaxFilenameBytes:
		return strata.Invalid("filename", "must be at most 255 bytes")
	case name == "." || name == "..":
		return strata.Invalid("filename", "must name a file")
	case strings.ContainsAny(name, `/\`):
		return strata.Invalid("filename", "must be a file name without a path")
	case strings.TrimSpace(name) != name:
		return strata.Invalid("filename", "must not begin or end with spaces")
	case strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0:
		return strata.Invalid("filename", "must not contain control characters")
	}
	return nil
}
