using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Samples.Common;
using SecureChannels.Client;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Identity;

namespace Samples.Worker;

/// <summary>
/// What a long-running agent keeps up with its authority, for as long as the host runs:
/// <list type="bullet">
/// <item>its revocation lists: a revoked peer's open channel is closed at once (<c>CredentialRevoked</c>), not when its
/// credential would have expired. Without the subscription, the worker keeps serving a revoked sub-agent.</item>
/// <item>its own credential: an enrolled credential lives an hour unless the ticket said otherwise; it is refreshed
/// ahead of expiry and the new one is presented in every open channel, so no channel has to be re-opened.</item>
/// </list>
/// </summary>
internal sealed partial class AuthorityUpkeep(AgentClient agent, SampleSettings settings, ILogger<AuthorityUpkeep> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var authority = settings.Authority.Identifier;
        var revocations = agent.Options.Revocations;
        void OnChanged(Identifier issuer) => LogRevocations(logger, revocations.Find(issuer)?.List.Sequence ?? 0);
        revocations.Changed += OnChanged;

        // The subscription reconnects with back-off by itself and catches up on what it missed; RunAsync ends when the
        // host stops. The refresher ends early only when the authority refuses for good (the worker was revoked).
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var subscription = agent.CreateAuthoritySubscription(settings.AuthorityEndPoint, authority);
        var subscribed = subscription.RunAsync(stopping.Token);
        var refresher = new CredentialRefresher(
            ct => agent.ConnectToAuthorityAsync(settings.AuthorityEndPoint, authority, presentCredentials: false, ct),
            agent.Credentials[0],
            new CredentialRefresherOptions { Logger = logger });
        refresher.Refreshed += fresh =>
        {
            LogRefreshed(logger, fresh.Leaf.Credential.NotAfter);
            return agent.UpdateCredentialsAsync([fresh], stoppingToken);
        };

        try
        {
            await refresher.RunAsync(stopping.Token);
        }
        catch (AuthorityException e)
        {
            // The authority no longer vouches for this worker (revoked, or unreachable until the credential expired):
            // nobody would accept its channels, so the host stops (BackgroundService failures stop it by default).
            LogCredentialLost(logger, e.Code, e.Message);
            throw;
        }
        finally
        {
            await stopping.CancelAsync();
            await subscribed;
            revocations.Changed -= OnChanged;
        }
    }

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "Revocation list {Sequence} from the authority applied; open channels re-checked")]
    private static partial void LogRevocations(ILogger logger, ulong sequence);

    [LoggerMessage(EventId = 11, Level = LogLevel.Information, Message = "Credential refreshed, valid until {NotAfter:u}")]
    private static partial void LogRefreshed(ILogger logger, DateTimeOffset notAfter);

    [LoggerMessage(EventId = 12, Level = LogLevel.Critical, Message = "The worker's credential cannot be refreshed ({Code}): {Why}; stopping")]
    private static partial void LogCredentialLost(ILogger logger, AuthorityErrorCode code, string why);
}
