using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Wire;
using SecureChannels.Relay.Hops;

namespace SecureChannels.Relay.Peering;

/// <summary>
/// Keeps the relay subscribed to its authority (docs/protocol.md §10.4): every newer revocation list re-checks the
/// open hops at once (a hop whose credential is revoked closes), and a newer admission policy judges new hops.
/// </summary>
internal sealed partial class AuthoritySubscriber(RelayIdentity identity, HopChannelFactory channels, IOptions<RelayOptions> options, TimeProvider time, ILogger<AuthoritySubscriber> logger) : BackgroundService
{
    /// <summary>The subscription while it runs (for tests and operations).</summary>
    public AuthoritySubscription? Subscription { get; private set; }

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value.Authority;
        if (string.IsNullOrEmpty(settings.Endpoint))
        {
            return Task.CompletedTask;
        }

        var endpoint = IPEndPoint.Parse(settings.Endpoint);
        var authority = Identifier.Parse(settings.Identifier);
        var book = new PolicyBook();
        book.Changed += resource =>
        {
            if (resource == settings.AdmissionResource && book.FindDocument(resource) is { } document)
            {
                channels.SetAdmission(document.Document.Policy);
                LogAdmission(logger, document.Document.Version);
            }
        };
        var subscription = new AuthoritySubscription(
            token => ConnectAsync(endpoint, authority, token),
            identity.Revocations,
            book,
            new AuthoritySubscriptionOptions { TimeProvider = time, Logger = logger });
        Subscription = subscription;
        return subscription.RunAsync(stoppingToken);
    }

    private async Task<SecureChannel> ConnectAsync(IPEndPoint endpoint, Identifier authority, CancellationToken cancellationToken)
    {
        var pipe = await SocketPipe.ConnectAsync(endpoint, options.Value.HandshakeTimeout, time, cancellationToken).ConfigureAwait(false);
        try
        {
            return await SecureChannel.ConnectAsync(pipe, await channels.ForAuthorityAsync(authority, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await pipe.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    [LoggerMessage(EventId = 50, Level = LogLevel.Information, Message = "Admission policy version {Version} from the authority applies to new hops")]
    private static partial void LogAdmission(ILogger logger, ulong version);
}
