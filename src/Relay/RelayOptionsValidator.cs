using System.Net;
using Microsoft.Extensions.Options;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Relay;

/// <summary>Checks what data annotations cannot: endpoints, names, the policy's syntax, time ranges, peers.</summary>
internal sealed class RelayOptionsValidator : IValidateOptions<RelayOptions>
{
    public ValidateOptionsResult Validate(string? name, RelayOptions options)
    {
        var failures = new List<string>();
        if (!RelayAddress.IsValidName(options.Name))
        {
            failures.Add($"Relay:Name '{options.Name}' is not a name (1-63 of a-z 0-9 - . starting with a letter or digit).");
        }

        if (!IPEndPoint.TryParse(options.Endpoint, out _))
        {
            failures.Add($"Relay:Endpoint '{options.Endpoint}' is not an IP endpoint such as 127.0.0.1:7300.");
        }

        if (!string.IsNullOrEmpty(options.MetricsEndpoint) && !IPEndPoint.TryParse(options.MetricsEndpoint, out _))
        {
            failures.Add($"Relay:MetricsEndpoint '{options.MetricsEndpoint}' is not an IP endpoint such as 127.0.0.1:7301.");
        }

        if (!AccessPolicy.TryParse(options.Admission, out _, out var syntax))
        {
            failures.Add($"Relay:Admission is not a valid policy: {syntax!.Message}");
        }

        CheckRange(failures, nameof(options.SendStallTimeout), options.SendStallTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
        CheckRange(failures, nameof(options.HandshakeTimeout), options.HandshakeTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5));
        CheckRange(failures, nameof(options.IdleTimeout), options.IdleTimeout, TimeSpan.FromSeconds(2), TimeSpan.FromHours(1));
        CheckRange(failures, nameof(options.OpenTimeout), options.OpenTimeout, TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5));
        CheckRange(failures, nameof(options.ShutdownTimeout), options.ShutdownTimeout, TimeSpan.Zero, TimeSpan.FromMinutes(5));

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var peer in options.Peers)
        {
            if (!RelayAddress.IsValidName(peer.Name) || peer.Name == options.Name || !seen.Add(peer.Name))
            {
                failures.Add($"Relay:Peers: '{peer.Name}' is not a valid, distinct relay name.");
            }

            if (!Identifier.TryParse(peer.Identifier, out _))
            {
                failures.Add($"Relay:Peers: '{peer.Name}' has no valid Identifier.");
            }

            if (!string.IsNullOrEmpty(peer.Endpoint) && !IPEndPoint.TryParse(peer.Endpoint, out _))
            {
                failures.Add($"Relay:Peers: '{peer.Name}' Endpoint '{peer.Endpoint}' is not an IP endpoint.");
            }
        }

        if (!string.IsNullOrEmpty(options.Authority.Endpoint))
        {
            if (!IPEndPoint.TryParse(options.Authority.Endpoint, out _))
            {
                failures.Add($"Relay:Authority:Endpoint '{options.Authority.Endpoint}' is not an IP endpoint.");
            }

            if (!Identifier.TryParse(options.Authority.Identifier, out _))
            {
                failures.Add("Relay:Authority:Identifier is required with Relay:Authority:Endpoint, and must be an identifier.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void CheckRange(List<string> failures, string name, TimeSpan value, TimeSpan min, TimeSpan max)
    {
        if (value < min || value > max)
        {
            failures.Add($"Relay:{name} {value} is outside {min} to {max}.");
        }
    }
}
