using System.Text;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Circuits;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Noise;

namespace SecureChannels.Fuzz.Targets;

/// <summary>
/// Text parsers; the first byte picks one, the rest is UTF-8: <see cref="Identifier.TryParse"/>,
/// <see cref="RelayAddress.TryParse"/>, <see cref="Principal.Parse"/> (expected <see cref="FormatException"/>, its
/// documented error), <see cref="EnrollmentTicket.TryParse"/>, <see cref="NoiseProtocol.Parse"/> (expected
/// <see cref="NoiseException"/>), <see cref="AttributeSet.Parse"/> of the lines (expected <see cref="FormatException"/>
/// or <see cref="ArgumentException"/> for too many). Invariant: what parses prints back to text that parses to the same value.
/// </summary>
public sealed class TextTarget : IFuzzTarget
{
    public string Name => "text";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }

        var text = Encoding.UTF8.GetString(input[1..]);
        switch (input[0] % 6)
        {
            case 0:
                if (Identifier.TryParse(text, out var identifier) && (!Identifier.TryParse(identifier.ToString(), out var again) || again != identifier))
                {
                    throw new FuzzInvariantException("An identifier does not print back to itself.");
                }

                break;
            case 1:
                if (RelayAddress.TryParse(text, out var address) && (!RelayAddress.TryParse(address.ToString(), out var reparsed) || reparsed != address))
                {
                    throw new FuzzInvariantException("A relay address does not print back to itself.");
                }

                break;
            case 2:
                try
                {
                    var principal = Principal.Parse(text);
                    if (Principal.Parse(principal.ToString()) != principal)
                    {
                        throw new FuzzInvariantException("A principal does not print back to itself.");
                    }
                }
                catch (FormatException)
                {
                }

                break;
            case 3:
                if (EnrollmentTicket.TryParse(text, out var ticket) && (!EnrollmentTicket.TryParse(ticket.Reveal(), out var same) || !same.ToBytes().AsSpan().SequenceEqual(ticket.ToBytes())))
                {
                    throw new FuzzInvariantException("An enrollment ticket does not print back to itself.");
                }

                break;
            case 4:
                try
                {
                    NoiseProtocol.Parse(text);
                }
                catch (NoiseException)
                {
                }

                break;
            default:
                try
                {
                    AttributeSet.Parse(text.Split('\n'));
                }
                catch (FormatException)
                {
                }
                catch (ArgumentException e) when (e.ParamName == "attributes")
                {
                }

                break;
        }
    }

    public IEnumerable<byte[]> Seeds()
    {
        var ticket = EnrollmentTicket.Create(FuzzWorld.Authority.Identifier);
        string[] seeds =
        [
            "\0" + FuzzWorld.Alice.Identifier,
            "\u0001alice@relay-1.example",
            "\u0001" + FuzzWorld.Bob.Identifier + "@relay-2",
            "\u0002user:alice@example.com",
            "\u0002self",
            "\u0003" + ticket.Reveal(),
            "\u0004Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b",
            "\u0004Noise_KK1fallback+psk0_25519_AESGCM_SHA512",
            "\u0005env=prod\nenv=staging\nrole=billing",
        ];
        return seeds.Select(Encoding.UTF8.GetBytes);
    }
}
