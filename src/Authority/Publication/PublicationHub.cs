using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using SecureChannels.Authority.Issuance;
using SecureChannels.Authority.Telemetry;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Authority.Publication;

/// <summary>
/// Fans every newer revocation list and policy document out to the subscribers, the moment the service
/// publishes it (or learns of it from the store). Each subscriber has its own bounded, coalescing queue.
/// </summary>
internal sealed class PublicationHub : IDisposable
{
    private readonly AuthorityService _service;
    private readonly AuthorityOptions _options;
    private readonly TimeProvider _time;
    private readonly AuthorityMetrics _metrics;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<Subscriber, byte> _subscribers = new();

    public PublicationHub(AuthorityService service, AuthorityOptions options, TimeProvider time, AuthorityMetrics metrics, ILogger<PublicationHub> logger)
    {
        _service = service;
        _options = options;
        _time = time;
        _metrics = metrics;
        _logger = logger;
        service.RevocationsPublished += OnRevocations;
        service.PolicyPublished += OnPolicy;
    }

    public int Count => _subscribers.Count;

    /// <summary>Adds a subscriber and offers it at once whatever it lacks.</summary>
    public Subscriber Subscribe(SecureChannel channel, SubscribeRequest held)
    {
        var subscriber = new Subscriber(channel, held, _options.SubscriberSendTimeout, _time, _metrics, _logger);
        _subscribers[subscriber] = 0;
        _metrics.SubscriberAdded();
        subscriber.Start();

        // Registered before the catch-up is offered: a publication racing with it is offered too, and the
        // subscriber's own versions drop whichever is older.
        var now = _time.GetTimestamp();
        if (_service.CurrentRevocations is { } list)
        {
            subscriber.Offer(Push.For(list, now));
        }

        foreach (var document in _service.CurrentPolicies)
        {
            subscriber.Offer(Push.For(document, now));
        }

        return subscriber;
    }

    public async Task UnsubscribeAsync(Subscriber subscriber)
    {
        if (_subscribers.TryRemove(subscriber, out _))
        {
            _metrics.SubscriberRemoved();
        }

        await subscriber.StopAsync().ConfigureAwait(false);
    }

    public void Dispose()
    {
        _service.RevocationsPublished -= OnRevocations;
        _service.PolicyPublished -= OnPolicy;
    }

    private void OnRevocations(SignedRevocationList list) => Fan(Push.For(list, _time.GetTimestamp()));

    private void OnPolicy(SignedPolicyDocument document) => Fan(Push.For(document, _time.GetTimestamp()));

    // Offer only queues (under the subscriber's lock) and never throws for a subscriber that is leaving, so one
    // subscriber can never keep a publication from the others.
    private void Fan(Push push)
    {
        foreach (var subscriber in _subscribers.Keys)
        {
            subscriber.Offer(push);
        }
    }
}
