// The targets are single-threaded by design, as AFL runs them: the transport target shares its transports between
// inputs, and a nonce taken by two inputs at once would break its round trip.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
