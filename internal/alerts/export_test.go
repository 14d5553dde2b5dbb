package alerts

import "time"

// SetPark makes Run call f each time it starts waiting: wait is the timer it
// set, idle whether the outbox was empty.
func SetPark(d *Dispatcher, f func(wait time.Duration, idle bool)) { d.park = f }
