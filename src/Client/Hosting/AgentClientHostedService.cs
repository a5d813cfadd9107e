using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SecureChannels.Protocol.Authority;

namespace SecureChannels.Client.Hosting;

/// <summary>
/// Starts the agent with the host: redeems its enrollment ticket (when configured), starts its hops, and keeps it in
/// step with its authority (revocations, credential refresh) until the host stops; then disposes the agent (closing
/// its channels and hops).
/// </summary>
/// <remarks>
/// The client is resolved at start, not at construction: the host resolves hosted services before it validates
/// options, and constructing the client from invalid options would hide the validation's message behind its own.
/// </remarks>
internal sealed partial class AgentClientHostedService(IServiceProvider services) : IHostedService, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private AgentClient? _client;
    private Task _upkeep = Task.CompletedTask;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var client = _client = services.GetRequiredService<AgentClient>();
        var options = services.GetRequiredService<IOptions<SecureChannelsClientOptions>>().Value;
        var logger = services.GetService<ILoggerFactory>()?.CreateLogger<AgentClientHostedService>() ?? Microsoft.Extensions.Logging.Abstractions.NullLogger<AgentClientHostedService>.Instance;
        if (options.Authority?.Parse() is var (endPoint, authority))
        {
            // Before the hops: the relay admits the agent on the credential it receives here.
            if (!string.IsNullOrEmpty(options.EnrollmentTicket) && client.Credentials.Count == 0)
            {
                var chain = await client.EnrollAsync(endPoint, authority, options.EnrollmentTicket, cancellationToken).ConfigureAwait(false);
                LogEnrolled(logger, chain.Leaf.Credential.Principal, chain.Leaf.Credential.NotAfter);
            }

            _upkeep = KeepUpAsync(client, endPoint, authority, logger);
        }

        await client.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _upkeep.WaitAsync(cancellationToken).ConfigureAwait(false); // never faults: KeepUpAsync logs every failure
        if (_client is { } client)
        {
            // Channel handlers stopped first (hosted services stop in reverse order); disposing ends what they left open.
            await client.DisposeAsync().AsTask().WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public void Dispose() => _stopping.Dispose();

    private async Task KeepUpAsync(AgentClient client, System.Net.IPEndPoint endPoint, Protocol.Identity.Identifier authority, ILogger logger)
    {
        try
        {
            await client.KeepUpWithAuthorityAsync(endPoint, authority, stoppingToken: _stopping.Token).ConfigureAwait(false);
        }
        catch (AuthorityException e)
        {
            // The authority no longer vouches for the agent (revoked, or its credential replaced): its channels will be
            // refused as its credential expires. Said loudly; what to do about it (stop, alert) is the application's call.
            LogCredentialLost(logger, e.Code, e.Message);
        }
        catch (Exception e) when (!_stopping.IsCancellationRequested)
        {
            // Anything else ending the upkeep early would let revocations and expiry pass unnoticed: never silently.
            LogUpkeepFailed(logger, e);
        }
        catch (OperationCanceledException)
        {
            // The host is stopping.
        }
    }

    [LoggerMessage(EventId = 90, Level = LogLevel.Information, Message = "Enrolled at the authority: acting for {Principal} until {NotAfter:u}")]
    private static partial void LogEnrolled(ILogger logger, Protocol.Credentials.Principal principal, DateTimeOffset notAfter);

    [LoggerMessage(EventId = 91, Level = LogLevel.Critical, Message = "The agent's credential can no longer be refreshed ({Code}): {Why}")]
    private static partial void LogCredentialLost(ILogger logger, AuthorityErrorCode code, string why);

    [LoggerMessage(EventId = 92, Level = LogLevel.Critical, Message = "Keeping in step with the authority stopped on an unexpected failure")]
    private static partial void LogUpkeepFailed(ILogger logger, Exception exception);
}
