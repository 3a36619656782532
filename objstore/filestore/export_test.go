package filestore

import "time"

// WidenRaceWindow makes every put sleep between its condition check and its
// rename, so that a missing lock shows as several winners.
func WidenRaceWindow() { testHookAfterCheck = func() { time.Sleep(2 * time.Millisecond) } }
