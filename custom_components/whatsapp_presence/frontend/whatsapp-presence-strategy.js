// The "WhatsApp" dashboard: a Home Assistant dashboard strategy, built from the entities of
// this integration each time the dashboard opens, so it follows contacts added or removed.
// Offered in Settings > Dashboards > Add dashboard; "Take control" turns it into an ordinary
// dashboard the user edits, which nothing here ever overwrites.
const DOMAIN = "whatsapp_presence";

const ids = (hass, domain, key) =>
  Object.values(hass.entities)
    .filter(
      (entity) =>
        entity.platform === DOMAIN &&
        entity.translation_key === key &&
        entity.entity_id.startsWith(`${domain}.`) &&
        !entity.hidden &&
        entity.entity_id in hass.states,
    )
    .map((entity) => entity.entity_id)
    .sort((a, b) =>
      (hass.states[a].attributes.friendly_name || a).localeCompare(
        hass.states[b].attributes.friendly_name || b,
      ),
    );

// The contact's name (its device's), not "Name ▸ Online": charts cut long labels short.
const contactName = (hass, entityId) => {
  const device = hass.devices[hass.entities[entityId]?.device_id];
  return device?.name_by_user || device?.name || hass.states[entityId].attributes.friendly_name;
};

const named = (hass, entityIds) =>
  entityIds.map((entity) => ({ entity, name: contactName(hass, entity) }));

// Today's timeline covers what is known of today: since midnight, or since the first of these
// contacts was tracked when that was later (a day-long axis would show minutes as slivers).
const hoursKnownToday = (hass, entityIds) => {
  const now = Date.now();
  let since = new Date().setHours(0, 0, 0, 0);
  const tracked = entityIds
    .map((id) => hass.devices[hass.entities[id]?.device_id]?.created_at)
    .filter((created) => typeof created === "number" && created > 0);
  if (tracked.length) since = Math.max(since, Math.min(...tracked) * 1000);
  const hours = Math.max(60000, now - since) / 3600000;
  return hours >= 2 ? Math.ceil(hours) : Math.ceil(hours * 60) / 60;
};

class WhatsAppPresenceDashboardStrategy extends HTMLElement {
  static async generate(config, hass) {
    const online = ids(hass, "binary_sensor", "online");
    const onlineToday = ids(hass, "sensor", "online_today");
    const cards = [];
    if (online.length === 0) {
      cards.push({
        type: "markdown",
        content:
          "No WhatsApp contacts are tracked yet: add them under Settings > Devices & services > WhatsApp Presence.",
      });
    } else {
      cards.push({
        type: "entity-filter",
        entities: online.map((entity) => ({
          entity,
          name: contactName(hass, entity),
          secondary_info: "last-changed",
        })),
        conditions: [{ condition: "state", state: "on" }],
        show_empty: false,
        card: { type: "entities", title: "Online now" },
      });
      // Said in words when nobody is: an empty list looks broken.
      cards.push({
        type: "conditional",
        conditions: online.map((entity) => ({ condition: "state", entity, state_not: "on" })),
        card: {
          type: "markdown",
          title: "Online now",
          content: `Nobody right now. ${online.length} contacts are tracked; the timeline shows when they were online.`,
        },
      });
      const hours = hoursKnownToday(hass, online);
      cards.push({
        type: "history-graph",
        title: "Today",
        hours_to_show: hours,
        entities: named(hass, online),
      });
      if (onlineToday.length) {
        cards.push({
          type: "statistics-graph",
          title: "Online time per day (last 14 days)",
          entities: named(hass, onlineToday),
          period: "day",
          days_to_show: 14,
          stat_types: ["change"],
          chart_type: "bar",
        });
      }
    }
    return {
      title: "WhatsApp",
      views: [{ title: "Presence", path: "presence", icon: "mdi:whatsapp", cards }],
    };
  }
}

customElements.define(
  "ll-strategy-dashboard-whatsapp-presence",
  WhatsAppPresenceDashboardStrategy,
);

window.customStrategies = window.customStrategies || [];
if (!window.customStrategies.some((strategy) => strategy.type === "whatsapp-presence")) {
  window.customStrategies.push({
    type: "whatsapp-presence",
    strategyType: "dashboard",
    name: "WhatsApp",
    description: "Who is online now, today's timeline and online time per day of your WhatsApp contacts.",
  });
}
