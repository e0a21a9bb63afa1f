package auth

import "time"

// IST is India Standard Time, a fixed +05:30 zone (no tzdata needed; India
// has no daylight saving). Indian brokers end their sessions at IST times.
func IST() *time.Location { return time.FixedZone("IST", 5*3600+30*60) }

// NextIST is the first hour:minute IST strictly after t.
func NextIST(t time.Time, hour, minute int) time.Time {
	ist := IST()
	n := t.In(ist)
	r := time.Date(n.Year(), n.Month(), n.Day(), hour, minute, 0, 0, ist)
	if !r.After(n) {
		r = r.AddDate(0, 0, 1)
	}
	return r
}
