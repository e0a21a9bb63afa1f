package config

import (
	"errors"
	"strings"
)

// expand replaces every ${NAME} in s with the variable's value and every $$
// with a single $. A $ followed by anything else is kept as it is. Variables
// that are unset or empty expand to "" and are returned in missing (in order
// of appearance, possibly repeated). A malformed reference is an error whose
// text never quotes s (s may be a secret).
func expand(s string, lookupEnv func(string) (string, bool)) (out string, missing []string, err error) {
	if !strings.Contains(s, "$") {
		return s, nil, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i += 2
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", nil, errors.New(`unterminated "${" (write "$$" for a literal "$")`)
			}
			name := s[i+2 : i+2+end]
			if !validVarName(name) {
				return "", nil, errors.New(`"${...}" must hold a variable name made of letters, digits and "_" (write "$$" for a literal "$")`)
			}
			if v, ok := lookupEnv(name); ok && v != "" {
				b.WriteString(v)
			} else {
				missing = append(missing, name)
			}
			i += 2 + end + 1
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), missing, nil
}

// validVarName reports whether name is a shell-style variable name.
func validVarName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
