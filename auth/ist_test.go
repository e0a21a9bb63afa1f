package auth

import (
	"testing"
	"time"
)

func TestNextIST(t *testing.T) {
	ist := IST()
	for _, tc := range []struct {
		in           time.Time
		hour, minute int
		want         time.Time
	}{
		{time.Date(2026, 3, 10, 5, 59, 0, 0, ist), 6, 0, time.Date(2026, 3, 10, 6, 0, 0, 0, ist)},
		{time.Date(2026, 3, 10, 6, 0, 0, 0, ist), 6, 0, time.Date(2026, 3, 11, 6, 0, 0, 0, ist)},
		{time.Date(2026, 3, 10, 6, 0, 0, 1, ist), 6, 0, time.Date(2026, 3, 11, 6, 0, 0, 0, ist)},
		{time.Date(2026, 3, 9, 22, 0, 0, 0, time.UTC), 3, 30, time.Date(2026, 3, 11, 3, 30, 0, 0, ist)},
		{time.Date(2026, 3, 9, 21, 59, 0, 0, time.UTC), 3, 30, time.Date(2026, 3, 10, 3, 30, 0, 0, ist)},
		{time.Date(2026, 3, 31, 18, 30, 0, 0, time.UTC), 0, 0, time.Date(2026, 4, 2, 0, 0, 0, 0, ist)},
		{time.Date(2026, 12, 31, 23, 0, 0, 0, ist), 0, 0, time.Date(2027, 1, 1, 0, 0, 0, 0, ist)},
	} {
		if got := NextIST(tc.in, tc.hour, tc.minute); !got.Equal(tc.want) {
			t.Errorf("NextIST(%s, %02d:%02d) = %s, want %s", tc.in, tc.hour, tc.minute, got, tc.want)
		}
	}
	if _, off := time.Date(2026, 6, 1, 0, 0, 0, 0, IST()).Zone(); off != 5*3600+1800 {
		t.Errorf("IST offset %d", off)
	}
}
