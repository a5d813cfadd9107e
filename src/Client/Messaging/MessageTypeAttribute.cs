using System.Collections.Concurrent;
using System.Reflection;
using SecureChannels.Protocol.Messaging;

namespace SecureChannels.Client.Messaging;

/// <summary>
/// Names a typed message on the wire (docs/protocol.md §11.2), so agents in other languages and other assemblies agree
/// on it. Without it, a type is named by its full .NET name.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct | AttributeTargets.Interface, Inherited = false)]
public sealed class MessageTypeAttribute : Attribute
{
    private static readonly ConcurrentDictionary<Type, string> Resolved = new();

    /// <summary>Names the type.</summary>
    /// <param name="name">The name: 1 to 128 UTF-8 bytes, for example <c>"billing.quote.v1"</c>.</param>
    /// <exception cref="ArgumentException"><paramref name="name"/> is empty or longer than 128 UTF-8 bytes.</exception>
    public MessageTypeAttribute(string name)
    {
        Name = Check(name, nameof(name));
    }

    /// <summary>The name the type has on the wire.</summary>
    public string Name { get; }

    /// <summary>The wire name of <typeparamref name="T"/>.</summary>
    /// <exception cref="ArgumentException">The type has no attribute and its full name is longer than 128 UTF-8 bytes (generic types often are): name it.</exception>
    public static string NameOf<T>() => Resolved.TryGetValue(typeof(T), out var name) ? name : Resolve(typeof(T));

    private static string Resolve(Type type)
    {
        var name = type.GetCustomAttribute<MessageTypeAttribute>()?.Name;
        if (name is null)
        {
            // A generic type's full name embeds its arguments' assembly names and versions: two agents on different
            // runtimes would not agree on it, so such a type must be named.
            if (type.IsGenericType)
            {
                throw new ArgumentException($"The generic type {type.Name} has no stable wire name: name it with [MessageType(\"...\")], or wrap it in a named type.", nameof(type));
            }

            name = Check(type.FullName ?? type.Name, "T", $" Name {type.Name} with [MessageType(\"...\")].");
        }

        return Resolved.GetOrAdd(type, name);
    }

    private static string Check(string name, string parameter, string hint = "")
    {
        if (string.IsNullOrEmpty(name) || System.Text.Encoding.UTF8.GetByteCount(name) > MessageEnvelope.MaxTypeLength)
        {
            throw new ArgumentException($"A message type name is 1 to {MessageEnvelope.MaxTypeLength} UTF-8 bytes.{hint}", parameter);
        }

        return name;
    }
}
