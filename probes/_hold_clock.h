/* Shared by the switch hook and the sampler: the capsule through which the sampler's watch
 * reads, without the GIL, when the greenlet running now started its step (a double in the
 * hook, CLOCK_MONOTONIC seconds; 0.0 while a hub or a thread's main greenlet runs).
 */
#ifndef ADVISOR_HOLD_CLOCK_H
#define ADVISOR_HOLD_CLOCK_H

#define HOLD_CLOCK_CAPSULE "advisor.probes.hold_clock"

#endif
