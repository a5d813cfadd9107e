using System.Net;
using Microsoft.Extensions.Options;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Messaging;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Client.Hosting;

/// <summary>
/// Checks everything <see cref="AgentClient"/> would otherwise reject late or not at all: a bad relay name, for one,
/// would only fail each hop's HELLO and be retried forever. Failures name the configuration key (under
/// <paramref name="prefix"/>, the bound section's path) so an operator finds the line to fix.
/// </summary>
internal sealed class SecureChannelsClientOptionsValidator(string prefix) : IValidateOptions<SecureChannelsClientOptions>
{
    // Kept well above the client's queue of channels waiting to be accepted, yet bounded: each one is a task and a scope.
    internal const int MaxConcurrentChannelsLimit = 100_000;

    public ValidateOptionsResult Validate(string? name, SecureChannelsClientOptions options)
    {
        var failures = new List<string>();
        if (options.Identity is null)
        {
            failures.Add($"{prefix}:Identity is required; set it in code (AddSecureChannelsClient's configure callback): configuration cannot carry a signer.");
        }

        if (options.Anchors is null)
        {
            failures.Add($"{prefix}:Anchors is required; set the trusted authorities in code (AddSecureChannelsClient's configure callback).");
        }

        if (options.Credentials is null)
        {
            failures.Add($"{prefix}:Credentials must not be null (empty: present none).");
        }

        for (var i = 0; i < options.Relays.Count; i++)
        {
            var relay = options.Relays[i];
            if (relay is null)
            {
                failures.Add($"{prefix}:Relays:{i} is empty.");
                continue;
            }

            if (!IPEndPoint.TryParse(relay.EndPoint ?? "", out var endPoint) || endPoint.Port == 0)
            {
                failures.Add($"{prefix}:Relays:{i}:EndPoint '{relay.EndPoint}' is not an IP endpoint with a port, such as 127.0.0.1:7300.");
            }

            if (!Identifier.TryParse(relay.Identifier, out _))
            {
                failures.Add($"{prefix}:Relays:{i}:Identifier '{relay.Identifier}' is not a relay identifier ('I' followed by 64 lowercase hex digits).");
            }
        }

        if (options.Authority is { } authority)
        {
            if (!IPEndPoint.TryParse(authority.EndPoint ?? "", out var endPoint) || endPoint.Port == 0)
            {
                failures.Add($"{prefix}:Authority:EndPoint '{authority.EndPoint}' is not an IP endpoint with a port, such as 127.0.0.1:7400.");
            }

            if (!Identifier.TryParse(authority.Identifier, out _))
            {
                failures.Add($"{prefix}:Authority:Identifier '{authority.Identifier}' is not an authority identifier ('I' followed by 64 lowercase hex digits).");
            }
        }

        // The ticket itself is never quoted: it is a secret until redeemed.
        if (!string.IsNullOrEmpty(options.EnrollmentTicket))
        {
            if (options.Authority is null)
            {
                failures.Add($"{prefix}:EnrollmentTicket is set but {prefix}:Authority is not: a ticket is redeemed at an authority.");
            }

            if (!Protocol.Authority.EnrollmentTicket.TryParse(options.EnrollmentTicket, out _))
            {
                failures.Add($"{prefix}:EnrollmentTicket is not an enrollment ticket (sct1_ followed by its base64url body).");
            }
        }

        if (options.Names.Count > RelayLimits.MaxNamesInHello)
        {
            failures.Add($"{prefix}:Names has {options.Names.Count} names; at most {RelayLimits.MaxNamesInHello} may be registered.");
        }

        for (var i = 0; i < options.Names.Count; i++)
        {
            if (!RelayAddress.IsValidName(options.Names[i]))
            {
                failures.Add($"{prefix}:Names:{i} '{options.Names[i]}' is not a relay name (1-63 of a-z 0-9 - . starting with a letter or digit).");
            }
        }

        if (!string.IsNullOrWhiteSpace(options.Policy) && !AccessPolicy.TryParse(options.Policy, out _, out var syntax))
        {
            failures.Add($"{prefix}:Policy is not a valid policy: {syntax.Message}");
        }

        // The same bounds AgentClient enforces, reported here with the key instead of as an ArgumentOutOfRangeException.
        if (options.FirstReconnectBackoff <= TimeSpan.Zero || options.FirstReconnectBackoff > TimeSpan.FromDays(1))
        {
            failures.Add($"{prefix}:FirstReconnectBackoff {options.FirstReconnectBackoff} is outside (00:00:00 to 1.00:00:00].");
        }

        if (options.MaxReconnectBackoff < options.FirstReconnectBackoff || options.MaxReconnectBackoff > TimeSpan.FromDays(1))
        {
            failures.Add($"{prefix}:MaxReconnectBackoff {options.MaxReconnectBackoff} is outside FirstReconnectBackoff ({options.FirstReconnectBackoff}) to 1.00:00:00.");
        }

        if (options.DefaultRequestTimeout < TimeSpan.FromMilliseconds(1) || options.DefaultRequestTimeout > MessageEnvelope.MaxTimeout)
        {
            failures.Add($"{prefix}:DefaultRequestTimeout {options.DefaultRequestTimeout} is outside 00:00:00.001 to {MessageEnvelope.MaxTimeout}.");
        }

        if (options.MaxConcurrentChannels is < 1 or > MaxConcurrentChannelsLimit)
        {
            failures.Add($"{prefix}:MaxConcurrentChannels {options.MaxConcurrentChannels} is outside 1 to {MaxConcurrentChannelsLimit}.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
