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

// Today's timeline covers what is known of today: since midnight, or since these contacts'
// presence was first known when that is later (just tracked, or a fresh demo), so minutes of
// data are not slivers on a day-long axis.
const hoursKnownToday = async (hass, entityIds) => {
  const now = Date.now();
  const midnight = new Date().setHours(0, 0, 0, 0);
  const created = entityIds
    .map((id) => hass.devices[hass.entities[id]?.device_id]?.created_at)
    .filter((at) => typeof at === "number" && at > 0);
  let since = midnight;
  if (created.length && Math.min(...created) * 1000 > midnight) {
    // Tracked today: from the first state that says online or offline (set-up and
    // reconnects come first). The timeline loads these states anyway.
    since = Math.min(...created) * 1000;
    try {
      const history = await hass.callWS({
        type: "history/history_during_period",
        start_time: new Date(since).toISOString(),
        entity_ids: entityIds,
        minimal_response: true,
        no_attributes: true,
      });
      const known = Object.values(history)
        .map((states) => states.find((state) => state.s === "on" || state.s === "off"))
        .filter(Boolean)
        .map((state) => (state.lc ?? state.lu) * 1000);
      if (known.length) since = Math.max(since, Math.min(...known));
    } catch (err) {
      // No history for this user: the devices' age will do.
    }
  }
  const hours = Math.max(30000, now - since) / 3600000;
  return hours >= 2 ? Math.ceil(hours) : Math.ceil(hours * 3600) / 3600;
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
      // Two columns: who is online and the days on one side, the (tall) timeline on the other.
      const glance = [
        {
          type: "entity-filter",
          entities: online.map((entity) => ({
            entity,
            name: contactName(hass, entity),
            secondary_info: "last-changed",
          })),
          conditions: [{ condition: "state", state: "on" }],
          show_empty: false,
          card: { type: "entities", title: "Online now" },
        },
        // Said in words when nobody is: an empty list looks broken.
        {
          type: "conditional",
          conditions: online.map((entity) => ({ condition: "state", entity, state_not: "on" })),
          card: {
            type: "markdown",
            title: "Online now",
            content: `Nobody right now. ${online.length} contacts are tracked; the timeline shows when they were online.`,
          },
        },
      ];
      if (onlineToday.length) {
        glance.push({
          type: "statistics-graph",
          title: "Online time per day (last 14 days)",
          entities: named(hass, onlineToday),
          period: "day",
          days_to_show: 14,
          stat_types: ["change"],
          chart_type: "bar",
        });
      }
      cards.push({ type: "vertical-stack", cards: glance });
      cards.push({
        type: "history-graph",
        title: "Today",
        hours_to_show: await hoursKnownToday(hass, online),
        entities: named(hass, online),
      });
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
