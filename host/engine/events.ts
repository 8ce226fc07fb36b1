// Connection events: the data plane writes fixed records into its event ring, only for the
// kinds somebody listens to; the engine drains the ring once per call and emits them as
// eventemitter3 events ('conn-created', 'conn-state', 'conn-expired', 'ftp').
import type { EventEmitter } from 'eventemitter3';
import type { DataPlane } from './dataplane.js';
import type { ConnEvent, EngineEvents } from './types.js';

/** Tells the data plane which records to write: those of the events with listeners. */
export function setEventInterest(dp: DataPlane, emitter: EventEmitter<EngineEvents>): void {
  dp.setEventInterest({
    created: emitter.listenerCount('conn-created') > 0,
    state: emitter.listenerCount('conn-state') > 0,
    expired: emitter.listenerCount('conn-expired') > 0,
    ftp: emitter.listenerCount('ftp') > 0,
  });
}

/** Emits every event the data plane recorded since the last drain, oldest first. */
export function deliverEvents(dp: DataPlane, emitter: EventEmitter<EngineEvents>): void {
  dp.drainEvents(({ kind, ftp, ...rest }) => {
    if (kind === 'ftp') {
      const { state: _s, oldState: _o, ...tuple } = rest;
      emitter.emit('ftp', { ...tuple, what: ftp ?? 'bad-reply' });
      return;
    }
    const event: ConnEvent = rest;
    if (kind === 'created') emitter.emit('conn-created', event);
    else if (kind === 'state') emitter.emit('conn-state', event);
    else emitter.emit('conn-expired', { ...event, why: kind === 'reused' ? 'reused' : 'timeout' });
  });
}
