// dbus-batterybank GUI v1: the "Battery bank" entry on a battery's page, shown only for our ProductId (0xBA6B).
// installservice.sh --gui-v1 adds one line for it to PageBattery.qml.
import QtQuick 2
import com.victron.velib 1.0
import "utils.js" as Utils

MbSubMenu {
	id: root

	property string bindPrefix
	property VBusItem productId: VBusItem { bind: Utils.path(root.bindPrefix, "/ProductId") }

	description: qsTr("Battery bank")
	show: productId.valid && productId.value === 0xBA6B
	subpage: Component {
		PageBatterybankBank {
			title: root.description
			bindPrefix: root.bindPrefix
		}
	}
}
